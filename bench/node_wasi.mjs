// node_wasi.mjs — runs a wasm32-wasi command under node's WASI preview1, the
// reference runtime the benchmarks compare Keel against.
//   node --no-warnings bench/node_wasi.mjs prog.wasm [args...]
// stdin/stdout/stderr are inherited; no directories are preopened. The exit
// status is the guest's proc_exit code (0 when _start returns).
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process, { argv, exit } from 'node:process';
import { setFlagsFromString } from 'node:v8';

// node 20/22: with TurboFan fast API calls, WASI calls made after the guest
// grows its memory use a stale memory pointer and crash the process (exit
// 139 after the output is written; nodejs/node#53087). Turn them off before
// any code is optimized. WASI calls are rare here, so this costs nothing.
setFlagsFromString('--no-turbo-fast-api-calls');

if (argv.length < 3) {
  console.error('usage: node --no-warnings node_wasi.mjs prog.wasm [args...]');
  exit(2);
}
const path = argv[2];
const wasi = new WASI({
  version: 'preview1',
  args: [path, ...argv.slice(3)],
  env: {},
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance);
process.exitCode = code ?? 0;
