;; memory.grow by one page succeeds, the new page is usable, and one byte
;; past it still traps "out of bounds".
(module
  (memory (export "memory") 1 4)
  (func (export "_start")
    (if (i32.ne (memory.grow (i32.const 1)) (i32.const 1)) (then unreachable))
    (i32.store8 (i32.const 131071) (i32.const 1))
    (i32.store8 (i32.const 131072) (i32.const 1))))
