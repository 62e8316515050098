;; i64.load whose static offset pushes the effective address past 4 GiB
;; (address 0xFFFFFFF8 + offset 16): must trap "out of bounds", not wrap.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (i64.load offset=16 (i32.const 0xFFFFFFF8)))))
