;; i64.rem_u by zero: trap kind "integer divide by zero".
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (i64.rem_u (i64.const 7) (i64.load (i32.const 0))))))
