;; The 8 kHz -> 16 kHz half-band interpolator of resampler.ts, four outputs at a time (SIMD).
;;
;; Per input sample b the half-band filter yields two outputs: a folded symmetric dot product
;;   conv[b] = sum_i c[i] * (w[b + i] + w[b + last - i]),  i < half
;; and a pure delay, w[b + delay]. Both are rounded to the nearest integer and saturated to Int16,
;; and stored interleaved (conv first when `convFirst`, else the delay first).
;;
;; `g711` first expands n G.711 bytes through a 256-entry table into w after the history, so a
;; G.711 packet becomes 16 kHz audio in one call (the expansion in JavaScript cost as much as
;; the filter).
;;
;; Memory (one page, owned by halfband-simd.ts):
;;   [0, 256)        c: the folded coefficients, f32 (at most 64)
;;   [256, 16896)    w: history and input, f32 (at most 4160 samples: last + n + 3 <= 4160)
;;   [17408, 33792)  out: Int16, interleaved pairs (at most 4096 pairs)
;;   [34816, 35840)  the mu-law table, f32 (256)
;;   [35840, 36864)  the A-law table, f32 (256)
;;   [36864, 40960)  bytes: the G.711 payload (at most 4096)
;; Outputs are computed in groups of four; a group past n reads and writes within the regions and
;; its surplus is not read back.
;;
;; Build: `npm run build:wasm` writes halfband-wasm.ts from this file (a test checks they agree).
(module
  (memory (export "memory") 1)
  (func (export "g711")
    (param $n i32) (param $half i32) (param $last i32) (param $delay i32) (param $convFirst i32) (param $table i32)
    (local $i i32) (local $w i32)
    ;; w[last + i] = table[bytes[i]]
    (local.set $w (i32.add (i32.const 256) (i32.shl (local.get $last) (i32.const 2))))
    (local.set $i (i32.const 0))
    (block $expanded
      (loop $expand
        (br_if $expanded (i32.ge_s (local.get $i) (local.get $n)))
        (f32.store
          (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2)))
          (f32.load (i32.add (local.get $table)
            (i32.shl (i32.load8_u (i32.add (i32.const 36864) (local.get $i))) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $expand)))
    (call $halfband (local.get $n) (local.get $half) (local.get $last) (local.get $delay) (local.get $convFirst)))
  (func $halfband (export "halfband")
    (param $n i32) (param $half i32) (param $last i32) (param $delay i32) (param $convFirst i32)
    (local $b i32) (local $i i32) (local $acc v128) (local $conv v128) (local $del v128)
    (local $lo i32) (local $hi i32)
    (local.set $b (i32.const 0))
    (block $done
      (loop $groups
        (br_if $done (i32.ge_s (local.get $b) (local.get $n)))
        (local.set $acc (v128.const f32x4 0 0 0 0))
        ;; lo walks w[b + i] up, hi walks w[b + last - i] down (byte addresses)
        (local.set $lo (i32.add (i32.const 256) (i32.shl (local.get $b) (i32.const 2))))
        (local.set $hi (i32.add (i32.const 256) (i32.shl (i32.add (local.get $b) (local.get $last)) (i32.const 2))))
        (local.set $i (i32.const 0))
        (block $taps_done
          (loop $taps
            (br_if $taps_done (i32.ge_s (local.get $i) (local.get $half)))
            (local.set $acc
              (f32x4.add (local.get $acc)
                (f32x4.mul
                  (f32x4.splat (f32.load (i32.shl (local.get $i) (i32.const 2))))
                  (f32x4.add (v128.load (local.get $lo)) (v128.load (local.get $hi))))))
            (local.set $lo (i32.add (local.get $lo) (i32.const 4)))
            (local.set $hi (i32.sub (local.get $hi) (i32.const 4)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $taps)))
        ;; round to nearest, saturate to Int32 then to Int16
        (local.set $conv
          (i16x8.narrow_i32x4_s
            (i32x4.trunc_sat_f32x4_s (f32x4.nearest (local.get $acc)))
            (v128.const i32x4 0 0 0 0)))
        (local.set $del
          (i16x8.narrow_i32x4_s
            (i32x4.trunc_sat_f32x4_s (f32x4.nearest
              (v128.load (i32.add (i32.const 256) (i32.shl (i32.add (local.get $b) (local.get $delay)) (i32.const 2))))))
            (v128.const i32x4 0 0 0 0)))
        ;; interleave the four Int16 of each: out[2k] = first[k], out[2k + 1] = second[k]
        (v128.store
          (i32.add (i32.const 17408) (i32.shl (local.get $b) (i32.const 2)))
          (if (result v128) (local.get $convFirst)
            (then (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $conv) (local.get $del)))
            (else (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $del) (local.get $conv)))))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (br $groups)))))
