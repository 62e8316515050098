;; Unbounded non-tail recursion (the result is stored after the call, so no
;; C compiler can turn it into a loop): trap kind "call stack exhausted".
(module
  (memory (export "memory") 1)
  (func $f (param i32) (result i32)
    (i32.store (i32.and (local.get 0) (i32.const 0xfffc))
               (call $f (i32.add (local.get 0) (i32.const 4))))
    (i32.load (i32.const 0)))
  (func (export "_start")
    (drop (call $f (i32.const 0)))))
