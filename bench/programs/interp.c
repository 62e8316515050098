/* interp.c — a small stack-machine bytecode interpreter.
 *
 * Assembles two programs for a 20-opcode VM (a switch-dispatched loop over
 * 32-bit instruction words with eight local registers and a value stack)
 * and runs them: counting primes below `size` by trial division, and the
 * total Collatz path length of every start below size/4. The interpreter is
 * the workload: indirect branches, a tight load/decode/dispatch loop, and
 * stack traffic, much like the inner loop of a scripting-language VM. */
#include "bench.h"

enum op {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIV,
    OP_MOD, OP_LT, OP_LE, OP_EQ, OP_JMP, OP_JZ, OP_JNZ, OP_INC, OP_SHR,
    OP_AND, OP_DUP, OP_POP,
};

/* Instruction word: opcode in the low 8 bits, signed operand above. */
#define INS(op, arg) ((uint32_t)(op) | ((uint32_t)(int32_t)(arg) << 8))

typedef struct {
    uint32_t code[256];
    int len;
} program;

static int emit(program *p, enum op op, int32_t arg)
{
    p->code[p->len] = INS(op, arg);
    return p->len++;
}

static void patch(program *p, int at, int32_t target)
{
    p->code[at] = (p->code[at] & 0xff) | ((uint32_t)target << 8);
}

static int64_t run(const program *p, int64_t *regs)
{
    int64_t stack[64];
    int sp = 0;
    const uint32_t *code = p->code;
    int pc = 0;
    for (;;) {
        uint32_t ins = code[pc++];
        int32_t arg = (int32_t)ins >> 8;
        switch ((enum op)(ins & 0xff)) {
        case OP_HALT: return sp > 0 ? stack[sp - 1] : 0;
        case OP_PUSH: stack[sp++] = arg; break;
        case OP_LOAD: stack[sp++] = regs[arg]; break;
        case OP_STORE: regs[arg] = stack[--sp]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DIV: sp--; stack[sp - 1] /= stack[sp]; break;
        case OP_MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_LE: sp--; stack[sp - 1] = stack[sp - 1] <= stack[sp]; break;
        case OP_EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case OP_JMP: pc = arg; break;
        case OP_JZ: if (stack[--sp] == 0) pc = arg; break;
        case OP_JNZ: if (stack[--sp] != 0) pc = arg; break;
        case OP_INC: regs[arg]++; break;
        case OP_SHR: sp--; stack[sp - 1] >>= stack[sp]; break;
        case OP_AND: sp--; stack[sp - 1] &= stack[sp]; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_POP: sp--; break;
        default:
            fprintf(stderr, "interp: bad opcode at %d\n", pc - 1);
            exit(1);
        }
    }
}

/* r0 = limit, r1 = n, r2 = d, r3 = count.
 *   count = 0; n = 2
 *   while n < limit:
 *     d = 2
 *     while d*d <= n: if n % d == 0 goto composite; d++
 *     count++
 *   composite: n++ */
static void build_primes(program *p)
{
    p->len = 0;
    emit(p, OP_PUSH, 0); emit(p, OP_STORE, 3);
    emit(p, OP_PUSH, 2); emit(p, OP_STORE, 1);
    int outer = emit(p, OP_LOAD, 1);
    emit(p, OP_LOAD, 0); emit(p, OP_LT, 0);
    int exit_jz = emit(p, OP_JZ, 0);
    emit(p, OP_PUSH, 2); emit(p, OP_STORE, 2);
    int inner = emit(p, OP_LOAD, 2);
    emit(p, OP_LOAD, 2); emit(p, OP_MUL, 0);
    emit(p, OP_LOAD, 1); emit(p, OP_LE, 0);
    int prime_jz = emit(p, OP_JZ, 0);
    emit(p, OP_LOAD, 1); emit(p, OP_LOAD, 2); emit(p, OP_MOD, 0);
    int comp_jz = emit(p, OP_JZ, 0);
    emit(p, OP_INC, 2);
    emit(p, OP_JMP, inner);
    int prime = emit(p, OP_INC, 3);
    int composite = emit(p, OP_INC, 1);
    emit(p, OP_JMP, outer);
    int done = emit(p, OP_LOAD, 3);
    emit(p, OP_HALT, 0);
    patch(p, exit_jz, done);
    patch(p, prime_jz, prime);
    patch(p, comp_jz, composite);
}

/* r0 = limit, r1 = start, r2 = x, r3 = steps.
 *   for start = 1; start < limit; start++:
 *     x = start
 *     while x != 1: x = (x & 1) ? 3x + 1 : x >> 1; steps++ */
static void build_collatz(program *p)
{
    p->len = 0;
    emit(p, OP_PUSH, 0); emit(p, OP_STORE, 3);
    emit(p, OP_PUSH, 1); emit(p, OP_STORE, 1);
    int outer = emit(p, OP_LOAD, 1);
    emit(p, OP_LOAD, 0); emit(p, OP_LT, 0);
    int exit_jz = emit(p, OP_JZ, 0);
    emit(p, OP_LOAD, 1); emit(p, OP_STORE, 2);
    int loop = emit(p, OP_LOAD, 2);
    emit(p, OP_PUSH, 1); emit(p, OP_EQ, 0);
    int next_jnz = emit(p, OP_JNZ, 0);
    emit(p, OP_INC, 3);
    emit(p, OP_LOAD, 2); emit(p, OP_PUSH, 1); emit(p, OP_AND, 0);
    int even_jz = emit(p, OP_JZ, 0);
    emit(p, OP_LOAD, 2); emit(p, OP_PUSH, 3); emit(p, OP_MUL, 0);
    emit(p, OP_PUSH, 1); emit(p, OP_ADD, 0); emit(p, OP_STORE, 2);
    emit(p, OP_JMP, loop);
    int even = emit(p, OP_LOAD, 2);
    emit(p, OP_PUSH, 1); emit(p, OP_SHR, 0); emit(p, OP_STORE, 2);
    emit(p, OP_JMP, loop);
    int next = emit(p, OP_INC, 1);
    emit(p, OP_JMP, outer);
    int done = emit(p, OP_LOAD, 3);
    emit(p, OP_HALT, 0);
    patch(p, exit_jz, done);
    patch(p, next_jnz, next);
    patch(p, even_jz, even);
}

int main(int argc, char **argv)
{
    long limit = bench_size(argc, argv, 500000);
    static program p;
    int64_t regs[8] = { 0 };

    build_primes(&p);
    regs[0] = limit;
    int64_t primes = run(&p, regs);

    build_collatz(&p);
    for (int i = 0; i < 8; i++) regs[i] = 0;
    regs[0] = limit / 4;
    int64_t steps = run(&p, regs);

    printf("interp limit=%ld primes=%" PRId64 " collatz_steps=%" PRId64 "\n",
           limit, primes, steps);
    return 0;
}
