;; _start executes `unreachable`: trap kind "unreachable".
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
