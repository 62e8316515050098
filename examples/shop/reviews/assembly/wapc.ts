// wapc.ts — the waPC half of the Keel ABI (docs/abi.md, "waPC components"),
// written against the bare imports of module "wapc": reading the request,
// answering it, failing it, and calling another component in process
// (binding "keel"). Also the module's abort handler (asc --use abort=...),
// so the module imports nothing but "wapc" and "keel" functions.
//
// Strings cross the boundary as UTF-8 bytes; AssemblyScript strings are
// UTF-16, so every crossing encodes or decodes. Keel copies whatever it keeps
// before returning, so the buffers below may die right after each call.
import * as keel from "./keel";

@external("wapc", "__guest_request")
declare function guest_request(op_ptr: usize, payload_ptr: usize): void;
@external("wapc", "__guest_response")
declare function guest_response(ptr: usize, len: usize): void;
@external("wapc", "__guest_error")
declare function guest_error(ptr: usize, len: usize): void;
@external("wapc", "__host_call")
declare function host_call(bd_ptr: usize, bd_len: usize, ns_ptr: usize, ns_len: usize,
                           op_ptr: usize, op_len: usize, ptr: usize, len: usize): i32;
@external("wapc", "__host_response_len")
declare function host_response_len(): usize;
@external("wapc", "__host_response")
declare function host_response(ptr: usize): void;
@external("wapc", "__host_error_len")
declare function host_error_len(): usize;
@external("wapc", "__host_error")
declare function host_error(ptr: usize): void;

// The binding Keel answers to; the namespace is the callee's name.
const BINDING = "keel";

// The operation and payload of the current call (step 2 of "One call").
export class Request {
  constructor(public op: string, public payload: ArrayBuffer) {}
}

export function readRequest(opLen: i32, payloadLen: i32): Request {
  const op = new ArrayBuffer(opLen);
  const payload = new ArrayBuffer(payloadLen);
  guest_request(changetype<usize>(op), changetype<usize>(payload));
  return new Request(String.UTF8.decode(op), payload);
}

// Set once fail() ran: __guest_call must then return 0.
export let failed = false;

// The response body (copied by Keel; the last call wins).
export function respond(body: string): void {
  const b = String.UTF8.encode(body);
  guest_response(changetype<usize>(b), b.byteLength);
}

// Fails the call: the HTTP client gets Keel's generic 500, the text goes to
// Keel's log (or to the calling component's __host_error).
export function fail(text: string): void {
  failed = true;
  const b = String.UTF8.encode(text);
  guest_error(changetype<usize>(b), b.byteLength);
}

// What __host_call gave: the callee's response bytes, or the error text.
export class CallResult {
  constructor(public ok: bool, public bytes: ArrayBuffer) {}
  get text(): string { return String.UTF8.decode(this.bytes); }
}

// Calls operation op of component ns (which must be in our `calls:` list).
export function call(ns: string, op: string, payload: string): CallResult {
  const bd = String.UTF8.encode(BINDING);
  const n = String.UTF8.encode(ns);
  const o = String.UTF8.encode(op);
  const p = String.UTF8.encode(payload);
  const ok = host_call(changetype<usize>(bd), bd.byteLength, changetype<usize>(n), n.byteLength,
                       changetype<usize>(o), o.byteLength, changetype<usize>(p), p.byteLength);
  const out = new ArrayBuffer(<i32>(ok ? host_response_len() : host_error_len()));
  if (ok) host_response(changetype<usize>(out));
  else host_error(changetype<usize>(out));
  return new CallResult(ok != 0, out);
}

// AssemblyScript's abort (failed assertion, bounds check, throw), wired in
// with `--use abort=assembly/wapc/guestAbort` (asconfig.json) instead of the
// default import env.abort, which Keel does not provide. The message goes
// to Keel's log and the instance traps: Keel answers 500 and logs the trap.
export function guestAbort(message: string | null, fileName: string | null,
                           line: u32, column: u32): void {
  const text = "AssemblyScript abort: " + (message !== null ? message : "(no message)") +
               " at " + (fileName !== null ? fileName : "?") + ":" + line.toString() + ":" +
               column.toString();
  keel.log(keel.ERROR, text);
  fail(text);
  unreachable();
}
