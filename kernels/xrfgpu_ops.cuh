// xrfgpu_ops.cuh — the arithmetic of xrfgpu's fused elementwise kernels.
//
// One source, two compilers. Every function here is marked XRFGPU_HD, which
// means `__host__ __device__` under nvcc / NVRTC and plain `inline` under a
// host C++ compiler (the Eigen idiom). The kernel files (*.cu) are written
// with the XRFGPU_KERNEL and XRFGPU_GRID_LOOP macros below, so the very same
// .cu file compiles
//
//   * with NVRTC (cupy.RawModule, at run time) and nvcc into CUDA kernels
//     with a grid-stride loop, and
//   * with g++ into plain `extern "C"` loops over the same elements, which the
//     test suite calls through ctypes on NumPy buffers and compares with the
//     NumPy engine of xrfgpu/_elementwise.py (tests/test_kernels_host.py).
//
// Semantics follow xrfgpu/_elementwise.py exactly, value for value:
//
//   * every operation rounds like one NumPy ufunc in the working dtype T
//     (float or double): products and sums go through xg_mul/xg_add/..., which
//     are the `__fmul_rn`-style intrinsics on the device, so the compiler may
//     not contract `a * b + c` into an FMA (NumPy rounds twice);
//   * maxima are written `(a < b) ? b : a`, which keeps a NaN in `a` as
//     np.maximum does;
//   * scalar parameters arrive already rounded to T (NumPy 2 casts a Python
//     float to the array's dtype before the ufunc runs);
//   * denormals are kept (no flush-to-zero: compile without --use_fast_math).
#ifndef XRFGPU_OPS_CUH
#define XRFGPU_OPS_CUH

#if !defined(__CUDACC_RTC__)
#include <cmath>  // std::fabs, std::copysign for the host side (NVRTC has the device builtins)
#endif

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define XRFGPU_CUDA 1
#define XRFGPU_HD __host__ __device__ __forceinline__
#define XRFGPU_LOOP __device__ __forceinline__
#define XRFGPU_KERNEL extern "C" __global__ void
// grid-stride loop over n elements (64-bit indices: maps of 10^4 x 10^4 x 30)
#define XRFGPU_GRID_LOOP(i, n)                                                     \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)
// grid-stride loop over n rows along the grid's second dimension: a kernel that walks rows here and the
// row's elements with XRFGPU_GRID_LOOP splits a flat index once per row, not once per element (a 64-bit
// integer division is a ~70-instruction subroutine on the device, more than an element's memory time)
#define XRFGPU_GRID_LOOP_Y(i, n) for (long long i = blockIdx.y; i < (n); i += gridDim.y)
// A row's columns in groups: each thread takes G columns blockDim.x apart (every access stays coalesced)
// and a kernel first loads the whole group, then computes and stores it, so a thread has G independent
// loads in flight. One column per thread at a time kept the step kernels of the GPU iteration at half the
// device's copy bandwidth (an H200, benchmarks/gpu_iteration_parts.py: x ← x·c over 4096² took 0.101 ms
// in rows of one column per thread, 0.051 ms in groups of four, a copy of the same bytes 0.050 ms). The
// kernels use G = XRFGPU_GROUP (the host build: 1); launch them with CudaKernels.grid_rows(row_items,
// rows, group=CudaKernels.GROUP), the same number (xrfgpu/cuda.py).
#ifndef XRFGPU_GROUP
#define XRFGPU_GROUP 4
#endif
#define XRFGPU_COLUMN_LOOP(j0, n, G)                                                          \
    for (long long j0 = (long long)blockIdx.x * blockDim.x * (G) + threadIdx.x; j0 < (n); \
         j0 += (long long)blockDim.x * gridDim.x * (G))
#define XRFGPU_COLUMN(j0, u) ((j0) + (long long)(u) * blockDim.x)
#define XRFGPU_GROUP_FOR(u, G) _Pragma("unroll") for (int u = 0; u < (G); ++u)
#else
#define XRFGPU_HD inline
#define XRFGPU_LOOP inline
#define XRFGPU_KERNEL extern "C" void
#define XRFGPU_GRID_LOOP(i, n) for (long long i = 0; i < (n); ++i)
#define XRFGPU_GRID_LOOP_Y(i, n) for (long long i = 0; i < (n); ++i)
#define XRFGPU_GROUP 1
#define XRFGPU_COLUMN_LOOP(j0, n, G) for (long long j0 = 0; j0 < (n); ++j0)
#define XRFGPU_COLUMN(j0, u) (j0)
#define XRFGPU_GROUP_FOR(u, G) for (int u = 0; u < 1; ++u)
#endif

namespace xrfgpu {

// ---- correctly rounded primitives (no FMA contraction) ------------------
#if defined(__CUDA_ARCH__)
XRFGPU_HD float xg_mul(float a, float b) { return __fmul_rn(a, b); }
XRFGPU_HD double xg_mul(double a, double b) { return __dmul_rn(a, b); }
XRFGPU_HD float xg_add(float a, float b) { return __fadd_rn(a, b); }
XRFGPU_HD double xg_add(double a, double b) { return __dadd_rn(a, b); }
XRFGPU_HD float xg_sub(float a, float b) { return __fsub_rn(a, b); }
XRFGPU_HD double xg_sub(double a, double b) { return __dsub_rn(a, b); }
XRFGPU_HD float xg_div(float a, float b) { return __fdiv_rn(a, b); }
XRFGPU_HD double xg_div(double a, double b) { return __ddiv_rn(a, b); }
XRFGPU_HD float xg_fma(float a, float b, float c) { return __fmaf_rn(a, b, c); }
XRFGPU_HD double xg_fma(double a, double b, double c) { return __fma_rn(a, b, c); }
XRFGPU_HD float xg_abs(float a) { return fabsf(a); }
XRFGPU_HD double xg_abs(double a) { return fabs(a); }
XRFGPU_HD float xg_copysign(float a, float b) { return copysignf(a, b); }
XRFGPU_HD double xg_copysign(double a, double b) { return copysign(a, b); }
XRFGPU_HD float xg_sqrt(float a) { return __fsqrt_rn(a); }
XRFGPU_HD double xg_sqrt(double a) { return __dsqrt_rn(a); }
#else
// host: the TU is compiled with -ffp-contract=off, so these round once each
template <typename T> XRFGPU_HD T xg_mul(T a, T b) { return a * b; }
template <typename T> XRFGPU_HD T xg_add(T a, T b) { return a + b; }
template <typename T> XRFGPU_HD T xg_sub(T a, T b) { return a - b; }
template <typename T> XRFGPU_HD T xg_div(T a, T b) { return a / b; }
template <typename T> XRFGPU_HD T xg_fma(T a, T b, T c) { return std::fma(a, b, c); }
template <typename T> XRFGPU_HD T xg_abs(T a) { return std::fabs(a); }
template <typename T> XRFGPU_HD T xg_copysign(T a, T b) { return std::copysign(a, b); }
template <typename T> XRFGPU_HD T xg_sqrt(T a) { return std::sqrt(a); }
#endif

// np.maximum(a, b) for b not NaN: a NaN in `a` propagates.
template <typename T> XRFGPU_HD T xg_max(T a, T b) { return (a < b) ? b : a; }

// ---- Richardson–Lucy -----------------------------------------------------
// ratio y / max(h⊛x + b, eps) (_elementwise.rl_ratio)
template <typename T> XRFGPU_HD T rl_ratio(T y, T blurred, T b, T eps) {
    return xg_div(y, xg_max(xg_add(blurred, b), eps));
}

// ratio without a background: h⊛x + 0 is skipped, as the NumPy engine does for b == 0.0
template <typename T> XRFGPU_HD T rl_ratio_nobg(T y, T blurred, T eps) {
    return xg_div(y, xg_max(blurred, eps));
}

// multiplicative update x · c (_elementwise.rl_update)
template <typename T> XRFGPU_HD T rl_update(T x, T c) { return xg_mul(x, c); }

// ---- FISTA ---------------------------------------------------------------
// One proximal-gradient step with momentum (_elementwise.fista_step):
//   v = (g · (−step)) + z;  x = max(v − thr, 0)  (nonneg)
//                            x = copysign(max(|v| − thr, 0), v)  (otherwise)
//   z_new = (x − x_prev) · momentum + x
template <typename T>
XRFGPU_HD void fista_step(T z, T g, T x_prev, T step, T thr, T momentum, int nonneg, T* x_out, T* z_out) {
    T v = xg_add(xg_mul(g, -step), z);
    T x;
    if (nonneg) {
        x = xg_max(xg_sub(v, thr), T(0));
    } else {
        T mag = xg_max(xg_sub(xg_abs(v), thr), T(0));
        x = xg_copysign(mag, v);
    }
    *x_out = x;
    *z_out = xg_add(xg_mul(xg_sub(x, x_prev), momentum), x);
}

// ---- L0 steps of the blind method (Pan et al. 2014) ----------------------
// u = S where S² ≥ t, else 0 (_elementwise.l0_intensity_threshold)
template <typename T> XRFGPU_HD T l0_intensity(T s, T t) { return (xg_mul(s, s) < t) ? T(0) : s; }

// Thresholded circular forward differences at (r, c) of one plane:
// h = S[r, c+1] − S[r, c], v = S[r+1, c] − S[r, c], both zeroed where h² + v² < t.
template <typename T>
XRFGPU_HD void l0_gradient_pair(const T* plane, long long rows, long long cols, long long r, long long c, T t,
                                T* h_out, T* v_out) {
    const long long c1 = (c + 1 == cols) ? 0 : c + 1;
    const long long r1 = (r + 1 == rows) ? 0 : r + 1;
    const T s = plane[r * cols + c];
    T h = xg_sub(plane[r * cols + c1], s);
    T v = xg_sub(plane[r1 * cols + c], s);
    const bool keep = xg_add(xg_mul(h, h), xg_mul(v, v)) >= t;
    *h_out = keep ? h : T(0);
    *v_out = keep ? v : T(0);
}

// Dxᵀh + Dyᵀv at (r, c): (h[r, c−1] − h[r, c]) + (v[r−1, c] − v[r, c]), circular
// (_elementwise.l0_gradient_term); fuses the differences, the joint threshold and the adjoints.
template <typename T>
XRFGPU_HD T l0_gradient_term_at(const T* plane, long long rows, long long cols, long long r, long long c, T t) {
    const long long cl = (c == 0) ? cols - 1 : c - 1;
    const long long ru = (r == 0) ? rows - 1 : r - 1;
    T h, v, h_left, v_left_unused, h_up_unused, v_up;
    l0_gradient_pair(plane, rows, cols, r, c, t, &h, &v);
    l0_gradient_pair(plane, rows, cols, r, cl, t, &h_left, &v_left_unused);
    l0_gradient_pair(plane, rows, cols, ru, c, t, &h_up_unused, &v_up);
    return xg_add(xg_sub(h_left, h), xg_sub(v_up, v));
}

// ---- spectrum · transfer function (complex, _elementwise.multiply_spectrum) ----
// (ar + i ai)(br + i bi) = (ar br − ai bi) + i (ar bi + ai br), each part with one fused
// multiply-add: re = fma(ar, br, −(ai bi)), im = fma(ar, bi, ai br). This is how NumPy's
// SIMD complex multiply rounds on x86-64 CPUs with FMA3/AVX-512 (NumPy ≥ 1.25); a NumPy
// build running its baseline (non-FMA) loop differs from it by at most 1 ulp.
template <typename T> XRFGPU_HD void complex_mul(T ar, T ai, T br, T bi, T* cr, T* ci) {
    *cr = xg_fma(ar, br, -xg_mul(ai, bi));
    *ci = xg_fma(ar, bi, xg_mul(ai, br));
}

// index of a broadcast operand of `size` elements repeated every `plane` elements:
// size == 1 → a scalar; plane == 1 → a trailing-axes map (NumPy suffix broadcasting);
// size == n_planes, plane == rows·cols → one value per map of a stack.
XRFGPU_HD long long bcast_index(long long i, long long size, long long plane) {
    // a scalar operand (size 1) is the common case: no division for it
    return (size == 1) ? 0 : (plane == 1 ? i % size : (i / plane) % size);
}

// Makhoul's reordering (xrfgpu._reflect_fft.makhoul_order) puts the even samples first, ascending, then
// the odd ones, descending; sample r of a length-n axis lands at (xrfgpu._reflect_fft.inverse_order)
XRFGPU_HD long long makhoul_target(long long r, long long n) { return (r % 2 == 0) ? r / 2 : n - 1 - (r - 1) / 2; }

// (map, row, column) of flat element i of a stack of maps of `plane` = rows · cols elements
XRFGPU_HD void plane_row_col(long long i, long long plane, long long cols, long long* p, long long* r, long long* c) {
    *p = i / plane;
    const long long k = i - *p * plane;
    *r = k / cols;
    *c = k - *r * cols;
}

}  // namespace xrfgpu

#endif  // XRFGPU_OPS_CUH
