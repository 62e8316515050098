;; i32.div_s by zero (operands from memory so nothing folds at compile
;; time): trap kind "integer divide by zero".
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (i32.div_s (i32.const 7) (i32.load (i32.const 0))))))
