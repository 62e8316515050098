;; i32.load straddling the end of a one-page memory (bytes 65534..65537):
;; trap kind "out of bounds".
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (i32.load (i32.const 65534)))))
