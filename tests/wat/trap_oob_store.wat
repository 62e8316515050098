;; i32.store one page past the end of memory: trap kind "out of bounds".
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 65536) (i32.const 42))))
