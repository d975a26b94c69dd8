;; SIMD kernels of the group all-reduce (src/group/reduce-kernel.ts). Pointers are byte offsets into the group's
;; shared memory; n counts floats and is a multiple of 4 (the caller does the tail). Per element the operations are
;; the same as the scalar code's, in the same order, so results are bitwise identical to it.
(module
  (import "env" "memory" (memory 1 65536 shared))
  ;; dst[i] = (a[i] + b[i]) * scale
  (func (export "average2") (param $dst i32) (param $a i32) (param $b i32) (param $n i32) (param $scale f32)
    (local $end i32) (local $s v128)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $s (f32x4.splat (local.get $scale)))
    (block $done
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (loop $next
        (v128.store (local.get $dst)
          (f32x4.mul (f32x4.add (v128.load (local.get $a)) (v128.load (local.get $b))) (local.get $s)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $dst) (local.get $end))))))
  ;; dst[i] += src[i]
  (func (export "accumulate") (param $dst i32) (param $src i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (loop $next
        (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $dst) (local.get $end))))))
  ;; dst[i] *= scale
  (func (export "scale") (param $dst i32) (param $n i32) (param $scale f32)
    (local $end i32) (local $s v128)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $s (f32x4.splat (local.get $scale)))
    (block $done
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (loop $next
        (v128.store (local.get $dst) (f32x4.mul (v128.load (local.get $dst)) (local.get $s)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $dst) (local.get $end)))))))
