;; A waPC component calling keel.log through its table (call_indirect):
;; must log "hi" and answer an empty 200, from its copy-on-write image too
;; (the table entry's instance is the host context, rebound per instance).
(module
  (type $log (func (param i32 i32 i32)))
  (import "keel" "log" (func $log (type $log)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $log)
  (data (i32.const 0) "hi")
  (func (export "__guest_call") (param i32 i32) (result i32)
    (call_indirect (type $log) (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 0))
    (i32.const 1)))
