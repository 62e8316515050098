;; call_indirect through an uninitialised (null) table entry: trap kind
;; "indirect call".
(module
  (memory (export "memory") 1)
  (type $void (func))
  (table 2 funcref)
  (elem (i32.const 0) $f)
  (func $f)
  (func (export "_start")
    (call_indirect (type $void) (i32.add (i32.load (i32.const 0)) (i32.const 1)))))
