;; call_indirect through an entry whose type differs from the expected one:
;; trap kind "indirect call".
(module
  (memory (export "memory") 1)
  (type $void (func))
  (type $i2i (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $f)
  (func $f (param i32) (result i32) (local.get 0))
  (func (export "_start")
    (call_indirect (type $void) (i32.load (i32.const 0)))))
