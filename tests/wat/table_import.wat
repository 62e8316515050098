;; A WASI command that calls an imported host function through its table
;; (call_indirect): the element segment holds fd_write. Must print "hi" and
;; exit 0, as a direct call would (wasm2c 1.0.32 handed the function the
;; wrong context here; src/engine/translate.c fixes it).
(module
  (type $fdw (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (type $fdw)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $fd_write)
  (data (i32.const 16) "hi\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call_indirect (type $fdw)
      (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 0)))))
