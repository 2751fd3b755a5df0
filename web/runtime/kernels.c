// The runtime's kernels: every operator the page's two networks (YuNet, float; the emotion CNN, int8 or float)
// need, on WebAssembly SIMD. No libc: the page's runtime.js owns the memory and passes addresses in bytes.
//
// Tensors are NCHW, one image at a time. Float convolutions are an im2col (skipped for 1x1) and a GEMM, or a
// direct kernel for depthwise 3x3; int8 convolutions compute as ONNX Runtime's QLinearConv does (exact int32
// sums of (x - x_zero_point) * w, the int32 bias added, then float(sum) * (x_scale * w_scale / y_scale) rounded
// half to even, plus y_zero_point, clamped to 0..255), so that they give its bytes exactly.
//
// The heavy kernels take (part, parts) and do that share of the work (rows of the columns, output channels), so
// that runtime.js can run them on several threads over one shared memory; (0, 1) is the whole.
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// ---- float ----

/** C[M][N] = A[M][K] B[K][N] (+ bias[m]) (ReLU): B's rows are ldb floats apart, C's are N apart. */
static void gemm_f32(int M, int N, int K, const float *A, const float *B, int ldb, const float *bias, float *C, int relu) {
  const v128_t zero = wasm_f32x4_splat(0);
  int n = 0;
  for (; n + 8 <= N; n += 8) {
    int m = 0;
    for (; m + 4 <= M; m += 4) {
      const float *a0 = A + m * K, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
      v128_t c00 = wasm_f32x4_splat(bias ? bias[m] : 0), c01 = c00;
      v128_t c10 = wasm_f32x4_splat(bias ? bias[m + 1] : 0), c11 = c10;
      v128_t c20 = wasm_f32x4_splat(bias ? bias[m + 2] : 0), c21 = c20;
      v128_t c30 = wasm_f32x4_splat(bias ? bias[m + 3] : 0), c31 = c30;
      const float *b = B + n;
      for (int k = 0; k < K; k++, b += ldb) {
        v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4), a;
        a = wasm_f32x4_splat(a0[k]); c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a, b0)); c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a, b1));
        a = wasm_f32x4_splat(a1[k]); c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a, b0)); c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a, b1));
        a = wasm_f32x4_splat(a2[k]); c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a, b0)); c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a, b1));
        a = wasm_f32x4_splat(a3[k]); c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a, b0)); c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a, b1));
      }
      if (relu) {
        c00 = wasm_f32x4_max(c00, zero); c01 = wasm_f32x4_max(c01, zero); c10 = wasm_f32x4_max(c10, zero); c11 = wasm_f32x4_max(c11, zero);
        c20 = wasm_f32x4_max(c20, zero); c21 = wasm_f32x4_max(c21, zero); c30 = wasm_f32x4_max(c30, zero); c31 = wasm_f32x4_max(c31, zero);
      }
      float *c = C + m * N + n;
      wasm_v128_store(c, c00); wasm_v128_store(c + 4, c01); c += N;
      wasm_v128_store(c, c10); wasm_v128_store(c + 4, c11); c += N;
      wasm_v128_store(c, c20); wasm_v128_store(c + 4, c21); c += N;
      wasm_v128_store(c, c30); wasm_v128_store(c + 4, c31);
    }
    for (; m < M; m++) {
      v128_t c0 = wasm_f32x4_splat(bias ? bias[m] : 0), c1 = c0;
      const float *b = B + n;
      for (int k = 0; k < K; k++, b += ldb) {
        v128_t a = wasm_f32x4_splat(A[m * K + k]);
        c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(a, wasm_v128_load(b)));
        c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(a, wasm_v128_load(b + 4)));
      }
      if (relu) { c0 = wasm_f32x4_max(c0, zero); c1 = wasm_f32x4_max(c1, zero); }
      wasm_v128_store(C + m * N + n, c0); wasm_v128_store(C + m * N + n + 4, c1);
    }
  }
  for (; n < N; n++) {
    for (int m = 0; m < M; m++) {
      float sum = bias ? bias[m] : 0;
      for (int k = 0; k < K; k++) sum += A[m * K + k] * B[k * ldb + n];
      C[m * N + n] = relu && sum < 0 ? 0 : sum;
    }
  }
}

/** The range [first, last) of `n` items, in multiples of `step`, that part `part` of `parts` does. */
static void share(int n, int step, int part, int parts, int *first, int *last) {
  int blocks = (n + step - 1) / step;
  *first = blocks * part / parts * step;
  *last = blocks * (part + 1) / parts * step;
  if (*last > n) *last = n;
}

/** How conv_f32 reads x: 2 a depthwise 3x3, 1 whole (1x1, stride 1, no padding), 0 as im2col_f32's columns. */
EXPORT(direct_f32) int direct_f32(int C, int H, int W, int M, int kh, int kw, int stride, int pt, int pl, int OH, int OW, int group) {
  if (group == C && M == C && kh == 3 && kw == 3 && stride == 1 && pt == 1 && pl == 1 && OH == H && OW == W) return 2;
  return kh == 1 && kw == 1 && stride == 1 && pt == 0 && pl == 0 && OH == H && OW == W && group == 1;
}

/** Bytes of scratch `conv_f32` needs for these shapes with `parts` parts. */
EXPORT(conv_f32_scratch) int conv_f32_scratch(int C, int H, int W, int M, int kh, int kw, int stride, int pt, int pl,
                                              int OH, int OW, int group, int parts) {
  int direct = direct_f32(C, H, W, M, kh, kw, stride, pt, pl, OH, OW, group);
  return direct == 2 ? (H + 2) * (W + 6) * 4 * parts : direct ? 0 : C * kh * kw * OH * OW * 4;
}

/** conv_f32's first step where it reads columns: rows (channel, ky, kx) of output pixels into `cols`, zeros
where the kernel reaches past the border. */
EXPORT(im2col_f32) void im2col_f32(const float *x, int C, int H, int W, int kh, int kw, int stride, int pt, int pl,
                                   int OH, int OW, float *cols, int part, int parts) {
  int first, last;
  share(C * kh * kw, 1, part, parts, &first, &last);
  for (int k = first; k < last; k++) {
    int c = k / (kh * kw), ky = k / kw % kh, kx = k % kw;
    float *row = cols + k * OH * OW;
    for (int oy = 0; oy < OH; oy++) {
      int iy = oy * stride - pt + ky;
      for (int ox = 0; ox < OW; ox++) {
        int ix = ox * stride - pl + kx;
        row[oy * OW + ox] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[(c * H + iy) * W + ix] : 0;
      }
    }
  }
}

/** A depthwise 3x3 convolution, stride 1, padding 1, of one channel: `pad` is (H + 2) x (W + 6) scratch floats. */
static void depthwise3x3(const float *x, int H, int W, const float *w, float bias, int relu, float *y, float *pad) {
  int PW = W + 6;
  for (int i = 0; i < (H + 2) * PW; i++) pad[i] = 0;
  for (int iy = 0; iy < H; iy++)
    for (int ix = 0; ix < W; ix++) pad[(iy + 1) * PW + ix + 1] = x[iy * W + ix];
  v128_t w0 = wasm_f32x4_splat(w[0]), w1 = wasm_f32x4_splat(w[1]), w2 = wasm_f32x4_splat(w[2]);
  v128_t w3 = wasm_f32x4_splat(w[3]), w4 = wasm_f32x4_splat(w[4]), w5 = wasm_f32x4_splat(w[5]);
  v128_t w6 = wasm_f32x4_splat(w[6]), w7 = wasm_f32x4_splat(w[7]), w8 = wasm_f32x4_splat(w[8]);
  v128_t b = wasm_f32x4_splat(bias), zero = wasm_f32x4_splat(0);
  for (int oy = 0; oy < H; oy++) {
    const float *r0 = pad + oy * PW, *r1 = r0 + PW, *r2 = r1 + PW;
    int ox = 0;
    for (; ox + 4 <= W; ox += 4) {
      v128_t s = b;
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w0, wasm_v128_load(r0 + ox)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w1, wasm_v128_load(r0 + ox + 1)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w2, wasm_v128_load(r0 + ox + 2)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w3, wasm_v128_load(r1 + ox)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w4, wasm_v128_load(r1 + ox + 1)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w5, wasm_v128_load(r1 + ox + 2)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w6, wasm_v128_load(r2 + ox)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w7, wasm_v128_load(r2 + ox + 1)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(w8, wasm_v128_load(r2 + ox + 2)));
      wasm_v128_store(y + oy * W + ox, relu ? wasm_f32x4_max(s, zero) : s);
    }
    for (; ox < W; ox++) {
      float s = bias + w[0] * r0[ox] + w[1] * r0[ox + 1] + w[2] * r0[ox + 2] + w[3] * r1[ox] + w[4] * r1[ox + 1]
                + w[5] * r1[ox + 2] + w[6] * r2[ox] + w[7] * r2[ox + 1] + w[8] * r2[ox + 2];
      y[oy * W + ox] = relu && s < 0 ? 0 : s;
    }
  }
}

/** ONNX Conv (float, optionally fused with the ReLU after it; group 1, or depthwise 3x3), one image: x (C, H, W)
-> y (M, OH, OW), output channels shared among parts. Where it reads columns, im2col_f32 has put them in scratch. */
EXPORT(conv_f32) void conv_f32(const float *x, int C, int H, int W, const float *w, const float *bias, int M, int kh, int kw,
                               int stride, int pt, int pl, int OH, int OW, int group, int relu, float *y, float *scratch,
                               int part, int parts) {
  int direct = direct_f32(C, H, W, M, kh, kw, stride, pt, pl, OH, OW, group), first, last;
  if (direct == 2) {
    share(C, 1, part, parts, &first, &last);
    for (int c = first; c < last; c++)
      depthwise3x3(x + c * H * W, H, W, w + c * 9, bias ? bias[c] : 0, relu, y + c * H * W, scratch + part * (H + 2) * (W + 6));
    return;
  }
  int K = C * kh * kw, N = OH * OW;
  share(M, 4, part, parts, &first, &last);
  gemm_f32(last - first, N, K, w + first * K, direct ? x : scratch, N, bias ? bias + first : 0, y + first * N, relu);
}

/** ONNX Gemm with transB (alpha = beta = 1), optionally fused with a ReLU: x (rows, K), w (M, K) -> y (rows, M). */
EXPORT(gemm_f32_rows) void gemm_f32_rows(const float *x, int rows, int K, const float *w, const float *bias, int M, int relu, float *y) {
  for (int r = 0; r < rows; r++)
    for (int m = 0; m < M; m++) {
      const float *a = w + m * K, *b = x + r * K;
      v128_t s4 = wasm_f32x4_splat(0);
      int k = 0;
      for (; k + 4 <= K; k += 4) s4 = wasm_f32x4_add(s4, wasm_f32x4_mul(wasm_v128_load(a + k), wasm_v128_load(b + k)));
      float s = wasm_f32x4_extract_lane(s4, 0) + wasm_f32x4_extract_lane(s4, 1) + wasm_f32x4_extract_lane(s4, 2)
                + wasm_f32x4_extract_lane(s4, 3) + (bias ? bias[m] : 0);
      for (; k < K; k++) s += a[k] * b[k];
      y[r * M + m] = relu && s < 0 ? 0 : s;
    }
}

/** 2x2 max pooling, stride 2, no padding (floor), of `planes` planes H x W, for one element type. */
#define MAXPOOL2(name, T)                                                                        \
  EXPORT(name) void name(const T *x, int planes, int H, int W, T *y) {                           \
    int OH = H / 2, OW = W / 2;                                                                  \
    for (int p = 0; p < planes; p++, x += H * W)                                                 \
      for (int oy = 0; oy < OH; oy++)                                                            \
        for (int ox = 0; ox < OW; ox++) {                                                        \
          const T *r = x + 2 * oy * W + 2 * ox;                                                  \
          T a = r[0] > r[1] ? r[0] : r[1], b = r[W] > r[W + 1] ? r[W] : r[W + 1];                \
          *y++ = a > b ? a : b;                                                                  \
        }                                                                                        \
  }
MAXPOOL2(maxpool2_f32, float)
MAXPOOL2(maxpool2_u8, uint8_t)

/** ONNX Resize, nearest, asymmetric, floor, by a whole factor: `planes` planes H x W -> (H f) x (W f). */
EXPORT(upsample_nearest_f32) void upsample_nearest_f32(const float *x, int planes, int H, int W, int f, float *y) {
  for (int p = 0; p < planes; p++, x += H * W)
    for (int oy = 0; oy < H * f; oy++)
      for (int ox = 0; ox < W * f; ox++) *y++ = x[(oy / f) * W + ox / f];
}

EXPORT(add_f32) void add_f32(const float *a, const float *b, int n, float *y) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < n; i++) y[i] = a[i] + b[i];
}

EXPORT(relu_f32) void relu_f32(const float *x, int n, float *y) {
  for (int i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

/** e^x in float to about an ulp: x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor series to r^7. */
static float exp_f32(float x) {
  if (x > 88.7f) return __builtin_inff();
  if (x < -103.9f) return 0;
  float k = __builtin_rintf(x * 1.44269504f);
  float r = (x - k * 0.693145752f) - k * 1.42860677e-6f; // ln 2 in two parts, so that r keeps its digits
  float p = 1 + r * (1 + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  int e = (int)k;
  if (e < -126) { p *= 0x1p-64f; e += 64; } // a subnormal result, in two steps
  union { int i; float f; } scale = {.i = (e + 127) << 23};
  return p * scale.f;
}

EXPORT(sigmoid_f32) void sigmoid_f32(const float *x, int n, float *y) {
  for (int i = 0; i < n; i++) y[i] = 1 / (1 + exp_f32(-x[i]));
}

/** Softmax over each row of `cols` values (ONNX Softmax on the last axis). */
EXPORT(softmax_f32) void softmax_f32(const float *x, int rows, int cols, float *y) {
  for (int r = 0; r < rows; r++, x += cols, y += cols) {
    float top = x[0], sum = 0;
    for (int c = 1; c < cols; c++) top = x[c] > top ? x[c] : top;
    for (int c = 0; c < cols; c++) sum += y[c] = exp_f32(x[c] - top);
    for (int c = 0; c < cols; c++) y[c] /= sum;
  }
}

// ---- int8 ----

/** ONNX QuantizeLinear to uint8: round(x / scale) half to even, plus the zero point, clamped. */
EXPORT(quantize_u8) void quantize_u8(const float *x, int n, float scale, int zero, uint8_t *y) {
  for (int i = 0; i < n; i++) {
    float v = __builtin_rintf(x[i] / scale) + zero;
    y[i] = v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
  }
}

EXPORT(dequantize_u8) void dequantize_u8(const uint8_t *x, int n, float scale, int zero, float *y) {
  for (int i = 0; i < n; i++) y[i] = (float)(x[i] - zero) * scale;
}

/** int8 weights (M, K) as int32 words of two int16 (k even, k odd): `conv_u8`'s layout; K is padded to even. */
EXPORT(pack_weights_s8) void pack_weights_s8(const int8_t *w, int M, int K, int32_t *out) {
  int P = (K + 1) / 2;
  for (int m = 0; m < M; m++)
    for (int p = 0; p < P; p++) {
      int lo = w[m * K + 2 * p], hi = 2 * p + 1 < K ? w[m * K + 2 * p + 1] : 0;
      out[m * P + p] = (int32_t)((uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16));
    }
}

static inline v128_t requantize(v128_t acc, v128_t scale, v128_t zero) {
  v128_t v = wasm_f32x4_nearest(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(acc), scale));
  v = wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(v), zero);
  return wasm_i32x4_min(wasm_i32x4_max(v, wasm_i32x4_splat(0)), wasm_i32x4_splat(255));
}

static inline void store4_u8(uint8_t *y, v128_t v) {
  v128_t bytes = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(v, v), wasm_i16x8_splat(0));
  wasm_v128_store32_lane(y, bytes, 0);
}

/** Y[M][N] (uint8, rows ldy apart) = requantized W[M][P pairs] . B[P][Np][2] (int16 pairs, Np a multiple of 8,
only the first N columns stored), bias[m] added to the int32 sums. */
static void gemm_s16(int M, int N, int Np, int P, const int32_t *W, const int16_t *B, const int32_t *bias,
                     const float *scale, int zero, uint8_t *Y, int ldy) {
  v128_t z = wasm_i32x4_splat(zero);
  for (int n = 0; n < Np; n += 8) {
    int m = 0;
    for (; m + 4 <= M; m += 4) {
      const int32_t *a0 = W + m * P, *a1 = a0 + P, *a2 = a1 + P, *a3 = a2 + P;
      v128_t c00 = wasm_i32x4_splat(bias[m]), c01 = c00, c10 = wasm_i32x4_splat(bias[m + 1]), c11 = c10;
      v128_t c20 = wasm_i32x4_splat(bias[m + 2]), c21 = c20, c30 = wasm_i32x4_splat(bias[m + 3]), c31 = c30;
      const int16_t *b = B + 2 * n;
      for (int p = 0; p < P; p++, b += 2 * Np) {
        v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 8), a;
        a = wasm_i32x4_splat(a0[p]); c00 = wasm_i32x4_add(c00, wasm_i32x4_dot_i16x8(a, b0)); c01 = wasm_i32x4_add(c01, wasm_i32x4_dot_i16x8(a, b1));
        a = wasm_i32x4_splat(a1[p]); c10 = wasm_i32x4_add(c10, wasm_i32x4_dot_i16x8(a, b0)); c11 = wasm_i32x4_add(c11, wasm_i32x4_dot_i16x8(a, b1));
        a = wasm_i32x4_splat(a2[p]); c20 = wasm_i32x4_add(c20, wasm_i32x4_dot_i16x8(a, b0)); c21 = wasm_i32x4_add(c21, wasm_i32x4_dot_i16x8(a, b1));
        a = wasm_i32x4_splat(a3[p]); c30 = wasm_i32x4_add(c30, wasm_i32x4_dot_i16x8(a, b0)); c31 = wasm_i32x4_add(c31, wasm_i32x4_dot_i16x8(a, b1));
      }
      v128_t out[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
      for (int r = 0; r < 4; r++) {
        v128_t s = wasm_f32x4_splat(scale[m + r]);
        v128_t lo = requantize(out[2 * r], s, z), hi = requantize(out[2 * r + 1], s, z);
        uint8_t *y = Y + (m + r) * ldy + n;
        if (n + 8 <= N) {
          v128_t bytes = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(lo, hi), wasm_i16x8_splat(0));
          wasm_v128_store64_lane(y, bytes, 0);
        } else {
          uint8_t tmp[8];
          store4_u8(tmp, lo); store4_u8(tmp + 4, hi);
          for (int i = 0; i < N - n; i++) y[i] = tmp[i];
        }
      }
    }
    for (; m < M; m++) {
      v128_t c0 = wasm_i32x4_splat(bias[m]), c1 = c0;
      const int16_t *b = B + 2 * n;
      for (int p = 0; p < P; p++, b += 2 * Np) {
        v128_t a = wasm_i32x4_splat(W[m * P + p]);
        c0 = wasm_i32x4_add(c0, wasm_i32x4_dot_i16x8(a, wasm_v128_load(b)));
        c1 = wasm_i32x4_add(c1, wasm_i32x4_dot_i16x8(a, wasm_v128_load(b + 8)));
      }
      v128_t s = wasm_f32x4_splat(scale[m]);
      uint8_t tmp[8];
      store4_u8(tmp, requantize(c0, s, z)); store4_u8(tmp + 4, requantize(c1, s, z));
      for (int i = 0; i < 8 && n + i < N; i++) Y[m * ldy + n + i] = tmp[i];
    }
  }
}

static int padded8(int n) { return (n + 7) & ~7; }

/** Bytes of scratch `im2col_u8` and `conv_u8` need. */
EXPORT(conv_u8_scratch) int conv_u8_scratch(int C, int kh, int kw, int OH, int OW) {
  return (C * kh * kw + 1) / 2 * padded8(OH * OW) * 4;
}

/** conv_u8's first step: the columns of x minus its zero point, as int16 pairs of rows (Np columns, zeros past
the border and past N), pairs of rows shared among parts. */
EXPORT(im2col_u8) void im2col_u8(const uint8_t *x, int C, int H, int W, int x_zero, int kh, int kw, int stride, int pt,
                                 int pl, int OH, int OW, int16_t *cols, int part, int parts) {
  int K = C * kh * kw, N = OH * OW, Np = padded8(N), first, last;
  share((K + 1) / 2, 1, part, parts, &first, &last);
  for (int k = 2 * first; k < 2 * last; k++) { // row k of the columns, as the even or odd half of pair k / 2
    int16_t *out = cols + (k / 2) * 2 * Np + (k & 1);
    if (k >= K) { for (int n = 0; n < Np; n++) out[2 * n] = 0; continue; }
    int c = k / (kh * kw), ky = k / kw % kh, kx = k % kw;
    const uint8_t *plane = x + c * H * W;
    for (int oy = 0, n = 0; oy < OH; oy++) {
      int iy = oy * stride - pt + ky;
      for (int ox = 0; ox < OW; ox++, n++) {
        int ix = ox * stride - pl + kx;
        out[2 * n] = iy >= 0 && iy < H && ix >= 0 && ix < W ? plane[iy * W + ix] - x_zero : 0;
      }
    }
    for (int n = N; n < Np; n++) out[2 * n] = 0;
  }
}

/** ONNX Runtime's QLinearConv, one image, from im2col_u8's columns: -> y (M, OH, OW) uint8, output channels shared
among parts; `w` from pack_weights_s8, `scale[m]` = x_scale * w_scale[m] / y_scale. */
EXPORT(conv_u8) void conv_u8(const int16_t *cols, int K, const int32_t *w, const int32_t *bias, const float *scale, int M,
                             int OH, int OW, int y_zero, uint8_t *y, int part, int parts) {
  int P = (K + 1) / 2, N = OH * OW, first, last;
  share(M, 4, part, parts, &first, &last);
  gemm_s16(last - first, N, padded8(N), P, w + first * P, cols, bias + first, scale + first, y_zero, y + first * N, N);
}

/** Bytes of scratch `gemm_u8_rows` needs. */
EXPORT(gemm_u8_scratch) int gemm_u8_scratch(int rows, int K, int M) {
  return (K + 1) / 2 * padded8(rows) * 4 + M * padded8(rows);
}

/** ONNX Runtime's QGemm with transB: x (rows, K) uint8 -> y (rows, M) uint8, weights as `conv_u8`'s. */
EXPORT(gemm_u8_rows) void gemm_u8_rows(const uint8_t *x, int rows, int K, int x_zero, const int32_t *w, const int32_t *bias,
                                       const float *scale, int M, int y_zero, uint8_t *y, int16_t *scratch) {
  int P = (K + 1) / 2, Np = padded8(rows);
  uint8_t *out = (uint8_t *)(scratch + 2 * P * Np); // (M, Np), transposed into y below
  for (int p = 0; p < P; p++)
    for (int n = 0; n < Np; n++)
      for (int j = 0; j < 2; j++) {
        int k = 2 * p + j;
        scratch[(p * Np + n) * 2 + j] = n < rows && k < K ? x[n * K + k] - x_zero : 0;
      }
  gemm_s16(M, rows, Np, P, w, scratch, bias, scale, y_zero, out, Np);
  for (int n = 0; n < rows; n++)
    for (int m = 0; m < M; m++) y[n * M + m] = out[m * Np + n];
}
