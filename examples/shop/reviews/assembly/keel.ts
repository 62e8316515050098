// keel.ts — the "keel" host functions this component uses (docs/abi.md,
// "Host functions, module keel"): the request's method and URI, the response's status
// and headers, and the log. All i32; a function returning bytes takes
// (buf, cap), returns the full length and writes only when it fits, -1
// meaning absent (every http_* inside a nested call).

@external("keel", "http_method")
declare function http_method(buf: usize, cap: usize): i32;
@external("keel", "http_uri")
declare function http_uri(buf: usize, cap: usize): i32;
@external("keel", "http_set_status")
declare function http_set_status(code: i32): void;
@external("keel", "http_set_header")
declare function http_set_header(name: usize, name_len: usize, value: usize,
                                 value_len: usize): i32;
@external("keel", "log")
declare function keel_log(level: i32, ptr: usize, len: usize): void;

export const DEBUG = 0;
export const INFO = 1;
export const WARN = 2;
export const ERROR = 3;

// The two "(buf, cap) -> len" values read here, each read whole: the
// length first (cap 0), then the bytes. null when absent (-1). A switch,
// not a function reference: an imported function called through the table
// gets the wrong context in Keel's engine today; direct calls are fine.
const METHOD = 0;
const URI = 1;

function fetch(what: i32): string | null {
  let len = what == METHOD ? http_method(0, 0) : http_uri(0, 0);
  if (len < 0) return null;
  const buf = new ArrayBuffer(len);
  const p = changetype<usize>(buf);
  len = what == METHOD ? http_method(p, len) : http_uri(p, len);
  return String.UTF8.decode(buf);
}

// The request method ("GET", ...), or null outside an HTTP request.
export function method(): string | null {
  return fetch(METHOD);
}

// The path plus "?query" as received, or null outside an HTTP request.
export function uri(): string | null {
  return fetch(URI);
}

export function setStatus(code: i32): void {
  http_set_status(code);
}

// Adds a response header line; false when Keel refused it (bad bytes, a
// header Keel controls, or inside a nested call).
export function setHeader(name: string, value: string): bool {
  const n = String.UTF8.encode(name);
  const v = String.UTF8.encode(value);
  return http_set_header(changetype<usize>(n), n.byteLength,
                         changetype<usize>(v), v.byteLength) == 0;
}

// One line in Keel's log, tagged with this component and the request id.
export function log(level: i32, text: string): void {
  const b = String.UTF8.encode(text);
  keel_log(level, changetype<usize>(b), b.byteLength);
}
