/*
 * codistill's native kernels: BLAS matrix products and fused loss maths run on memory that tfjs's wasm backend
 * owns. Every function takes Float32Array/Int32Array views of the wasm heap and writes its result into an output
 * view that the caller allocated, so nothing is copied on the way in or out.
 *
 * The calls are synchronous: a kernel runs on the thread of the actor that called it, as the wasm kernels do.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>
#include <node_api.h>

/* The elementwise loops are compiled for AVX-512, AVX2 and plain x86-64; the loader picks the best this CPU runs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/*
 * exp(x) for x in float range, in a form the compiler vectorises (libm's expf is a call per element): 2^n * e^r
 * with n = round(x / ln 2) and Cephes' degree-6 polynomial for e^r, |r| <= ln 2 / 2; within 2 ulp of expf. NaN
 * stays NaN; x is clamped to [-87, 88] (exp(-87) ~ 1.6e-38 stands in for smaller results).
 */
static inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float shifted = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: n lands in the low mantissa bits */
  const float n = shifted - 12582912.0f;
  int32_t bits;
  memcpy(&bits, &shifted, sizeof bits);
  const int32_t scale_bits = (bits - 0x4B400000 + 127) << 23;
  float scale;
  memcpy(&scale, &scale_bits, sizeof scale);
  const float r = x - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return (p * r * r + r + 1.0f) * scale;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
/* tanh(x) = 1 - 2 / (exp(2x) + 1): absolute error under 1e-7. */
static inline float tanh_approx(float x) { return 1.0f - 2.0f / (exp_approx(2.0f * x) + 1.0f); }

#define CHECK(call)                                                                                                 \
  do {                                                                                                              \
    if ((call) != napi_ok) {                                                                                        \
      napi_throw_error(env, NULL, "codistill native: bad argument in " #call);                                     \
      return NULL;                                                                                                  \
    }                                                                                                               \
  } while (0)

/* A typed array's data and length; throws (and returns 0) if the value is not a typed array of that type. */
static int view(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length, const char *what) {
  bool is_typed = false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, v, &type, length, data, &buffer, &offset) != napi_ok || type != want) {
    char message[160];
    snprintf(message, sizeof message, "codistill native: %s must be a %s", what,
             want == napi_float32_array ? "Float32Array" : "Int32Array");
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  return 1;
}

static int64_t integer(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}

static bool boolean(napi_env env, napi_value v) {
  bool x = false;
  napi_get_value_bool(env, v, &x);
  return x;
}

static napi_value throw_range(napi_env env, const char *message) {
  napi_throw_range_error(env, NULL, message);
  return NULL;
}

/*
 * batchMatMul(a, b, out, m, n, k, transposeA, transposeB, pairs)
 *   out[i] = op(a[pairs[2i]]) op(b[pairs[2i+1]]) for each of the pairs.length / 2 products, where a holds
 *   [*, m, k] matrices ([*, k, m] when transposed), b [*, k, n] ([*, n, k]) and out [pairs/2, m, n], row-major.
 * The pairs say which matrices of a and b meet, so any batch broadcasting is the caller's plan.
 */
static napi_value batch_mat_mul(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 9) return throw_range(env, "codistill native: batchMatMul takes 9 arguments");
  float *a, *b, *out;
  int32_t *pairs;
  size_t na, nb, nout, npairs;
  if (!view(env, argv[0], napi_float32_array, (void **)&a, &na, "a")) return NULL;
  if (!view(env, argv[1], napi_float32_array, (void **)&b, &nb, "b")) return NULL;
  if (!view(env, argv[2], napi_float32_array, (void **)&out, &nout, "out")) return NULL;
  const int64_t m = integer(env, argv[3]), n = integer(env, argv[4]), k = integer(env, argv[5]);
  const bool ta = boolean(env, argv[6]), tb = boolean(env, argv[7]);
  if (!view(env, argv[8], napi_int32_array, (void **)&pairs, &npairs, "pairs")) return NULL;
  const size_t products = npairs / 2;
  if (m < 0 || n < 0 || k < 0) return throw_range(env, "codistill native: negative matrix size");
  const size_t sa = (size_t)(m * k), sb = (size_t)(k * n), sc = (size_t)(m * n);
  if (nout < products * sc) return throw_range(env, "codistill native: out is smaller than the products");
  for (size_t i = 0; i < products; i++) {
    if (pairs[2 * i] < 0 || (size_t)(pairs[2 * i] + 1) * sa > na || pairs[2 * i + 1] < 0 ||
        (size_t)(pairs[2 * i + 1] + 1) * sb > nb) {
      return throw_range(env, "codistill native: a pair names a matrix past the end of its operand");
    }
  }
  for (size_t i = 0; i < products; i++) {
    float *c = out + i * sc;
    if (k == 0) {
      memset(c, 0, sc * sizeof(float));
      continue;
    }
    if (m == 0 || n == 0) continue;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                1.0f, a + pairs[2 * i] * sa, ta ? (int)m : (int)k, b + pairs[2 * i + 1] * sb, tb ? (int)k : (int)n, 0.0f,
                c, (int)n);
  }
  return NULL;
}

/* Reads argc arguments into argv, throwing unless exactly `want` were passed. */
static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *name) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    char message[120];
    snprintf(message, sizeof message, "codistill native: %s takes %zu arguments", name, want);
    napi_throw_range_error(env, NULL, message);
    return 0;
  }
  return 1;
}

#define F32(i, var, n, what) \
  if (!view(env, argv[i], napi_float32_array, (void **)&var, &n, what)) return NULL
#define I32(i, var, n, what) \
  if (!view(env, argv[i], napi_int32_array, (void **)&var, &n, what)) return NULL
#define SIZES_AGREE(cond, name) \
  if (!(cond)) return throw_range(env, "codistill native: " name ": the sizes of its arrays disagree")

/* linear(x [M, K], w [K, N], b [N], out [M, N]): out = x w + b (every row gets b, then one sgemm adds x w). */
static napi_value linear(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv, "linear")) return NULL;
  float *x, *w, *b, *out;
  size_t nx, nw, nb, nout;
  F32(0, x, nx, "x");
  F32(1, w, nw, "w");
  F32(2, b, nb, "b");
  F32(3, out, nout, "out");
  const size_t n = nb, k = n == 0 ? 0 : nw / n, m = k == 0 ? 0 : nx / k;
  SIZES_AGREE(n > 0 && k > 0 && nw == k * n && nx == m * k && nout == m * n, "linear");
  for (size_t r = 0; r < m; r++) memcpy(out + r * n, b, n * sizeof(float));
  if (m > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, x, (int)k, w, (int)n, 1.0f, out, (int)n);
  return NULL;
}

/* columnSums(x [M, N], out [N]): out[j] = sum over rows of x[., j], added row after row (a fixed order). */
static napi_value column_sums(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args(env, info, 2, argv, "columnSums")) return NULL;
  float *x, *out;
  size_t nx, n;
  F32(0, x, nx, "x");
  F32(1, out, n, "out");
  SIZES_AGREE(n > 0 && nx % n == 0, "columnSums");
  memset(out, 0, n * sizeof(float));
  for (size_t r = 0; r < nx / n; r++) {
    const float *row = x + r * n;
    for (size_t j = 0; j < n; j++) out[j] += row[j];
  }
  return NULL;
}

/* One batch row of one step: activates the gates z [4H] in place and writes c, tanh(c) and h [H]. */
CLONES static void lstm_cell(float *restrict z, const float *restrict cp, float *restrict c, float *restrict tc,
                             float *restrict h, size_t H) {
  for (size_t j = 0; j < H; j++) {
    const float i = sigmoid(z[j]), f = sigmoid(z[H + j]), g = tanh_approx(z[2 * H + j]), o = sigmoid(z[3 * H + j]);
    z[j] = i;
    z[H + j] = f;
    z[2 * H + j] = g;
    z[3 * H + j] = o;
    c[j] = f * cp[j] + i * g;
    tc[j] = tanh_approx(c[j]);
    h[j] = o * tc[j];
  }
}

/* One batch row of one step back: the gate pre-activations' gradients dz [4H]; dc [H] goes in as dL/dc_t from the
   step after and comes out as dL/dc_{t-1}. */
CLONES static void lstm_cell_back(const float *restrict gates, const float *restrict tc, const float *restrict cp,
                                  const float *restrict dh, float *restrict dc, float *restrict dz, size_t H) {
  for (size_t j = 0; j < H; j++) {
    const float i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
    const float d = dc[j] + dh[j] * o * (1.0f - tc[j] * tc[j]);
    dz[j] = d * g * i * (1.0f - i);
    dz[H + j] = d * cp[j] * f * (1.0f - f);
    dz[2 * H + j] = d * i * (1.0f - g * g);
    dz[3 * H + j] = dh[j] * tc[j] * o * (1.0f - o);
    dc[j] = d * f;
  }
}

/*
 * lstmForward(xw [T*B, 4H], u [H, 4H], h0 [B, H], c0 [B, H], gates [T*B, 4H], cs [T*B, H], tanhCs [T*B, H],
 *             out [(T+1)*B, H])
 * One LSTM layer over T steps, time-major (row t*B + b is step t of batch row b), gate order i, f, g, o:
 *   z_t = xw_t + h_{t-1} u;  i, f, o = sigmoid;  g = tanh;  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t).
 * Writes the activated gates, c_t and tanh(c_t) of every step (what lstmBackward needs), and out = [h_1..h_T; c_T].
 */
static napi_value lstm_forward(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!args(env, info, 8, argv, "lstmForward")) return NULL;
  float *xw, *u, *h0, *c0, *gates, *cs, *tcs, *out;
  size_t nxw, nu, nh0, nc0, ng, ncs, ntcs, nout;
  F32(0, xw, nxw, "xw");
  F32(1, u, nu, "u");
  F32(2, h0, nh0, "h0");
  F32(3, c0, nc0, "c0");
  F32(4, gates, ng, "gates");
  F32(5, cs, ncs, "cs");
  F32(6, tcs, ntcs, "tanhCs");
  F32(7, out, nout, "out");
  const size_t hidden = (size_t)llround(sqrt((double)nu / 4.0));
  SIZES_AGREE(hidden > 0 && hidden * hidden * 4 == nu && nh0 % hidden == 0 && nc0 == nh0, "lstmForward");
  const size_t batch = nh0 / hidden, steps = batch == 0 ? 0 : nxw / (batch * 4 * hidden);
  SIZES_AGREE(batch > 0 && nxw == steps * batch * 4 * hidden && ng == nxw && ncs == steps * batch * hidden &&
                  ntcs == ncs && nout == (steps + 1) * batch * hidden,
              "lstmForward");
  const size_t Hd = hidden, G = 4 * hidden, step = batch * Hd;
  for (size_t t = 0; t < steps; t++) {
    float *z = gates + t * batch * G;
    memcpy(z, xw + t * batch * G, batch * G * sizeof(float));
    const float *hPrev = t == 0 ? h0 : out + (t - 1) * step;
    const float *cPrev = t == 0 ? c0 : cs + (t - 1) * step;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)batch, (int)G, (int)Hd, 1.0f, hPrev, (int)Hd, u, (int)G,
                1.0f, z, (int)G);
    for (size_t r = 0; r < batch; r++) {
      lstm_cell(z + r * G, cPrev + r * Hd, cs + t * step + r * Hd, tcs + t * step + r * Hd, out + t * step + r * Hd, Hd);
    }
  }
  memcpy(out + steps * step, steps == 0 ? c0 : cs + (steps - 1) * step, step * sizeof(float));
  return NULL;
}

/*
 * lstmBackward(dy [(T+1)*B, H], gates, cs, tanhCs, out, h0, c0, u, dz [T*B, 4H], du [H, 4H], dh0 [B, H], dc0 [B, H])
 * Back-propagation through lstmForward's T steps: dy holds the gradients of h_1..h_T and then of c_T; the outputs
 * are the gradients of xw (= dz, the gate pre-activations), u, h0 and c0.
 */
static napi_value lstm_backward(napi_env env, napi_callback_info info) {
  napi_value argv[12];
  if (!args(env, info, 12, argv, "lstmBackward")) return NULL;
  float *dy, *gates, *cs, *tcs, *out, *h0, *c0, *u, *dz, *du, *dh0, *dc0;
  size_t ndy, ng, ncs, ntcs, nout, nh0, nc0, nu, ndz, ndu, ndh0, ndc0;
  F32(0, dy, ndy, "dy");
  F32(1, gates, ng, "gates");
  F32(2, cs, ncs, "cs");
  F32(3, tcs, ntcs, "tanhCs");
  F32(4, out, nout, "out");
  F32(5, h0, nh0, "h0");
  F32(6, c0, nc0, "c0");
  F32(7, u, nu, "u");
  F32(8, dz, ndz, "dz");
  F32(9, du, ndu, "du");
  F32(10, dh0, ndh0, "dh0");
  F32(11, dc0, ndc0, "dc0");
  const size_t hidden = (size_t)llround(sqrt((double)nu / 4.0));
  SIZES_AGREE(hidden > 0 && hidden * hidden * 4 == nu && nh0 % hidden == 0 && nc0 == nh0, "lstmBackward");
  const size_t Hd = hidden, G = 4 * hidden, batch = nh0 / hidden, step = batch * Hd;
  const size_t steps = batch == 0 ? 0 : ng / (batch * G);
  SIZES_AGREE(batch > 0 && ng == steps * batch * G && ncs == steps * step && ntcs == ncs && nout == (steps + 1) * step &&
                  ndy == nout && ndz == ng && ndu == nu && ndh0 == nh0 && ndc0 == nc0,
              "lstmBackward");
  /* dh0 doubles as the scratch row block for dh_t; dc0 carries dc from step to step. */
  float *dh = dh0, *dcNext = dc0;
  memcpy(dcNext, dy + steps * step, step * sizeof(float));
  for (size_t t = steps; t-- > 0;) {
    memcpy(dh, dy + t * step, step * sizeof(float));
    if (t + 1 < steps) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)Hd, (int)G, 1.0f, dz + (t + 1) * batch * G,
                  (int)G, u, (int)G, 1.0f, dh, (int)Hd);
    }
    const float *cPrev = t == 0 ? c0 : cs + (t - 1) * step;
    for (size_t r = 0; r < batch; r++) {
      lstm_cell_back(gates + (t * batch + r) * G, tcs + t * step + r * Hd, cPrev + r * Hd, dh + r * Hd, dcNext + r * Hd,
                     dz + (t * batch + r) * G, Hd);
    }
  }
  /* dh0 = dz_0 u^T; du = h0^T dz_0 + sum over t >= 1 of h_t^T dz_t (h_1..h_{T-1} are contiguous in out). */
  if (steps > 0) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)Hd, (int)G, 1.0f, dz, (int)G, u, (int)G, 0.0f,
                dh0, (int)Hd);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Hd, (int)G, (int)batch, 1.0f, h0, (int)Hd, dz, (int)G,
                0.0f, du, (int)G);
    if (steps > 1) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Hd, (int)G, (int)((steps - 1) * batch), 1.0f, out,
                  (int)Hd, dz + batch * G, (int)G, 1.0f, du, (int)G);
    }
  } else {
    memset(dh0, 0, step * sizeof(float));
    memset(du, 0, nu * sizeof(float));
  }
  return NULL;
}

/* q = softmax(z) over one row; returns log-sum-exp(z). A row holding NaN or infinity comes out all NaN. */
CLONES static float softmax_row(const float *restrict z, float *restrict q, size_t n) {
  float max = -INFINITY, poison = 0;
  for (size_t c = 0; c < n; c++) {
    max = z[c] > max ? z[c] : max;
    poison += z[c] * 0.0f; /* NaN once any z is NaN or infinite */
  }
  if (poison != 0.0f || poison != poison) {
    for (size_t c = 0; c < n; c++) q[c] = NAN;
    return NAN;
  }
  float sum = 0;
  for (size_t c = 0; c < n; c++) sum += (q[c] = exp_approx(z[c] - max));
  const float inv = 1.0f / sum;
  for (size_t c = 0; c < n; c++) q[c] *= inv;
  return max + logf(sum);
}

/*
 * softmaxRows(logits [P, C], labels [P], probs [P, C], stats [P, 2])
 * For each row: q = softmax(z) into probs; stats = (log-sum-exp of z, z[label]). A label outside [0, C) gives NaN.
 */
static napi_value softmax_rows(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv, "softmaxRows")) return NULL;
  float *z, *probs, *stats;
  int32_t *labels;
  size_t nz, rows, np, ns;
  F32(0, z, nz, "logits");
  I32(1, labels, rows, "labels");
  F32(2, probs, np, "probs");
  F32(3, stats, ns, "stats");
  SIZES_AGREE(rows > 0 && nz % rows == 0 && np == nz && ns == 2 * rows, "softmaxRows");
  const size_t classes = nz / rows;
  for (size_t r = 0; r < rows; r++) {
    const float *zr = z + r * classes;
    const float lse = softmax_row(zr, probs + r * classes, classes);
    const int32_t label = labels[r];
    stats[2 * r] = lse;
    stats[2 * r + 1] = label >= 0 && (size_t)label < classes ? zr[label] : NAN;
  }
  return NULL;
}

/*
 * crossEntropyGrad(probs [P, C], labels [P], teacher [P, C] or [], weight [P] or [1], smoothing, scale, out [P, C])
 * The gradient of the codistillation cross-entropy with respect to the logits, in one pass:
 *   out = (probs * weight_r - y' - teacher) * scale,   y' = one-hot(label) * (1 - smoothing) + smoothing / C.
 * teacher is the averaged teacher distribution already scaled by its weight (empty without one).
 */
static napi_value cross_entropy_grad(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!args(env, info, 7, argv, "crossEntropyGrad")) return NULL;
  float *q, *teacher, *weight, *out;
  int32_t *labels;
  size_t nq, rows, nt, nw, nout;
  F32(0, q, nq, "probs");
  I32(1, labels, rows, "labels");
  F32(2, teacher, nt, "teacher");
  F32(3, weight, nw, "weight");
  double smoothing = 0, scale = 0;
  napi_get_value_double(env, argv[4], &smoothing);
  napi_get_value_double(env, argv[5], &scale);
  F32(6, out, nout, "out");
  SIZES_AGREE(rows > 0 && nq % rows == 0 && nout == nq && (nt == 0 || nt == nq) && (nw == 1 || nw == rows),
              "crossEntropyGrad");
  const size_t classes = nq / rows;
  const float s = (float)scale, spread = (float)(smoothing / (double)classes), hit = (float)(1.0 - smoothing);
  for (size_t r = 0; r < rows; r++) {
    const float *qr = q + r * classes, *tr = nt ? teacher + r * classes : NULL;
    float *o = out + r * classes;
    const float w = weight[nw == 1 ? 0 : r];
    if (tr) {
      for (size_t c = 0; c < classes; c++) o[c] = (qr[c] * w - spread - tr[c]) * s;
    } else {
      for (size_t c = 0; c < classes; c++) o[c] = (qr[c] * w - spread) * s;
    }
    const int32_t label = labels[r];
    if (label >= 0 && (size_t)label < classes) o[label] -= hit * s;
  }
  return NULL;
}

/*
 * One Adam update of one variable, in one pass over its n values, in tfjs's order of operations (float32 throughout):
 *   m' = m b1 + g (1 - b1),  v' = v b2 + g^2 (1 - b2),  w' = (m' / c1) / (sqrt(v' / c2) + eps) * -lr + w
 * with c1 = 1 - b1^t and c2 = 1 - b2^t (tfjs's accumulated powers, subtracted from 1 in float32 here as there), and
 * 1 - b1, 1 - b2 and -lr computed in double and rounded once, as tfjs does in JavaScript.
 */
CLONES static void adam_update(const float *restrict w, const float *restrict m, const float *restrict v, const float *restrict g,
                               float *restrict w_out, float *restrict m_out, float *restrict v_out, size_t n, float step, float b1,
                               float a1, float b2, float a2, float eps, float c1, float c2) {
  for (size_t i = 0; i < n; i++) {
    const float mi = m[i] * b1 + g[i] * a1;
    const float vi = v[i] * b2 + (g[i] * g[i]) * a2;
    m_out[i] = mi;
    v_out[i] = vi;
    w_out[i] = (mi / c1) / (sqrtf(vi / c2) + eps) * step + w[i];
  }
}

/* adam(w, m, v, g, accBeta1 [1], accBeta2 [1], wOut, mOut, vOut, lr, beta1, beta2, epsilon) */
static napi_value adam(napi_env env, napi_callback_info info) {
  napi_value argv[13];
  if (!args(env, info, 13, argv, "adam")) return NULL;
  float *w, *m, *v, *g, *acc1, *acc2, *wo, *mo, *vo;
  size_t nw, nm, nv, ng, n1, n2, nwo, nmo, nvo;
  F32(0, w, nw, "w");
  F32(1, m, nm, "m");
  F32(2, v, nv, "v");
  F32(3, g, ng, "g");
  F32(4, acc1, n1, "accBeta1");
  F32(5, acc2, n2, "accBeta2");
  F32(6, wo, nwo, "wOut");
  F32(7, mo, nmo, "mOut");
  F32(8, vo, nvo, "vOut");
  SIZES_AGREE(nm == nw && nv == nw && ng == nw && nwo == nw && nmo == nw && nvo == nw && n1 == 1 && n2 == 1, "adam");
  double lr = 0, b1 = 0, b2 = 0, eps = 0;
  napi_get_value_double(env, argv[9], &lr);
  napi_get_value_double(env, argv[10], &b1);
  napi_get_value_double(env, argv[11], &b2);
  napi_get_value_double(env, argv[12], &eps);
  adam_update(w, m, v, g, wo, mo, vo, nw, (float)-lr, (float)b1, (float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)eps,
              1.0f - acc1[0], 1.0f - acc2[0]);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const int64_t n = argc == 1 ? integer(env, argv[0]) : 1;
  if (n < 1) return throw_range(env, "codistill native: BLAS threads must be at least 1");
  openblas_set_num_threads((int)n);
  return NULL;
}

/* "OpenBLAS 0.3.21, Haswell core, 1 thread": the version (the first two words of its config), core and threads. */
static napi_value describe(napi_env env, napi_callback_info info) {
  (void)info;
  char version[64];
  const char *config = openblas_get_config();
  size_t n = 0, spaces = 0;
  while (config[n] && n + 1 < sizeof version && !(config[n] == ' ' && ++spaces == 2)) n++;
  memcpy(version, config, n);
  version[n] = 0;
  const int threads = openblas_get_num_threads();
  char text[160];
  snprintf(text, sizeof text, "%s, %s core, %d thread%s", version, openblas_get_corename(), threads, threads == 1 ? "" : "s");
  napi_value result;
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"batchMatMul", NULL, batch_mat_mul, NULL, NULL, NULL, napi_default, NULL},
      {"linear", NULL, linear, NULL, NULL, NULL, napi_default, NULL},
      {"columnSums", NULL, column_sums, NULL, NULL, NULL, napi_default, NULL},
      {"lstmForward", NULL, lstm_forward, NULL, NULL, NULL, napi_default, NULL},
      {"lstmBackward", NULL, lstm_backward, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxRows", NULL, softmax_rows, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyGrad", NULL, cross_entropy_grad, NULL, NULL, NULL, napi_default, NULL},
      {"adam", NULL, adam, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"describe", NULL, describe, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
