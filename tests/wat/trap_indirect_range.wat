;; call_indirect with an index past the end of the table: trap kind
;; "indirect call" (wasm calls it "undefined element").
(module
  (memory (export "memory") 1)
  (type $void (func))
  (table 2 funcref)
  (elem (i32.const 0) $f $f)
  (func $f)
  (func (export "_start")
    (call_indirect (type $void) (i32.add (i32.load (i32.const 0)) (i32.const 1000)))))
