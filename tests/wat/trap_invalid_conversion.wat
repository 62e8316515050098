;; i32.trunc_f32_s of NaN: trap kind "invalid conversion".
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00\c0\7f") ;; quiet NaN
  (func (export "_start")
    (drop (i32.trunc_f32_s (f32.load (i32.const 0))))))
