;; i32.trunc_f32_s of 3e9 (out of i32 range): trap kind "integer overflow".
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\5e\32\d0\4f") ;; 3e9 as f32 (0x4f32d05e)
  (func (export "_start")
    (drop (i32.trunc_f32_s (f32.load (i32.const 0))))))
