;; Valid module importing a function no host provides: keel run must refuse
;; to load it (exit 1, one stderr line naming the file).
(module
  (import "env" "missing_fn" (func $m))
  (memory (export "memory") 1)
  (func (export "_start") (call $m)))
