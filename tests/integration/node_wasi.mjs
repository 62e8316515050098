// node_wasi.mjs — runs a WASI preview1 command under node's built-in WASI, with
// the same command-line contract as `keel run`, so the parity tests can run
// one guest under both and compare. Run it as
//
//   node --no-warnings node_wasi.mjs [--dir HOST[::GUEST]]... [--env K=V]... \
//        MODULE.wasm [ARGS...]
//
// argv[0] is MODULE.wasm as given; everything after it goes to the guest
// verbatim. The guest's environment is exactly the --env pairs (split on the
// first '='). stdin/stdout/stderr are this process's fds 0/1/2, untouched.
// Exit status: the guest's proc_exit code (0 when _start returns); a trap is
// reported as one line "node: trap: <message>" on stderr and exit 134, like
// keel. Usage errors exit 2, an unloadable module exits 1.
import { fstatSync, openSync, readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';
import process from 'node:process';
import { setFlagsFromString } from 'node:v8';

// V8's fast API calls make node 20 call WASI with a stale memory pointer
// after the guest grows its memory (nodejs/node#53087): turn them off.
setFlagsFromString('--no-turbo-fast-api-calls');

function usage(msg) {
  process.stderr.write(`node_wasi: ${msg}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const preopens = {};
const env = {};
let i = 0;
for (; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--dir' || a === '--env') {
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    const v = argv[++i];
    if (a === '--dir') {
      const sep = v.indexOf('::');
      const host = sep < 0 ? v : v.slice(0, sep);
      const guest = sep < 0 ? v : v.slice(sep + 2);
      preopens[guest] = host;
    } else {
      const eq = v.indexOf('=');
      if (eq <= 0) usage(`--env wants KEY=VALUE, got ${JSON.stringify(v)}`);
      env[v.slice(0, eq)] = v.slice(eq + 1);
    }
  } else if (a.startsWith('--dir=') || a.startsWith('--env=')) {
    argv.splice(i + 1, 0, a.slice(6));
    argv[i] = a.slice(0, 5);
    i--;
  } else if (a.startsWith('-') && a !== '-') {
    usage(`unknown option ${a}`);
  } else {
    break;
  }
}
if (i >= argv.length) usage('no module given');
const modulePath = argv[i];
const args = argv.slice(i);

let module;
try {
  module = await WebAssembly.compile(readFileSync(modulePath));
} catch (e) {
  process.stderr.write(`node: ${modulePath}: ${e.message}\n`);
  process.exit(1);
}

// node puts its stdio pipes in non-blocking mode and uvwasi then hands
// EAGAIN to the guest on a full pipe. A pipe reopened through /proc gets a
// fresh open file description, which is blocking.
function stdioFd(fd, flags) {
  try {
    if (fstatSync(fd).isFIFO()) return openSync(`/proc/self/fd/${fd}`, flags);
  } catch { /* keep the inherited fd */ }
  return fd;
}

let wasi;
try {
  wasi = new WASI({
  version: 'preview1',
  args,
  env,
  preopens,
  returnOnExit: true,
  stdin: stdioFd(0, 'r'),
  stdout: stdioFd(1, 'w'),
  stderr: stdioFd(2, 'w'),
  });
} catch (e) {
  usage(`cannot set up WASI: ${e.message}`);
}

let instance;
try {
  instance = await WebAssembly.instantiate(module, wasi.getImportObject());
} catch (e) {
  // A missing import is a load error, as in keel (exit 1).
  process.stderr.write(`node: ${modulePath}: ${e.message.replace(/\n/g, ' ')}\n`);
  process.exit(1);
}

let code;
try {
  code = wasi.start(instance);
} catch (e) {
  process.stderr.write(`node: trap: ${String(e.message).replace(/\n/g, ' ')}\n`);
  process.exit(134);
}
process.exitCode = code ?? 0;
