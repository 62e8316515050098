;; _start calls proc_exit(7): exit status 7, nothing on stdout or stderr.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (i32.const 7))
    unreachable))
