// dct_spectrum.cu — the reflect-boundary blur of a symmetric PSF on the rfft2 half spectrum of a
// Makhoul-reordered map (xrfgpu/_reflect_fft.py states the formulas; spectrum_filter_reference is the
// NumPy statement this kernel is tested against).
//
// One work item per frequency pair (k1, k2) and (n1 − k1, k2), k1 ≤ n1/2, k2 ≤ n2/2 (rows k1 of each map
// along the grid's second dimension, k2 in column groups along the first): it reads the two
// half-spectrum bins, forms the four DCT coefficients of the orbit (±k1, ±k2), scales them by the
// eigenvalues λ and writes the two bins back, in place (the pair is read before it is written, and no
// other work item touches it). The arithmetic is in double whatever the storage type T; `scale`
// multiplies λ (the GPU iteration folds cuFFT's unnormalised inverse, 1/(n1 n2), into it); tw1, tw2 hold
// (cos πk/2N, sin πk/2N) for k = 0 … N of each axis (dct_twiddles in xrfgpu/_reflect_fft.py), read
// instead of computed: a double sincospi per bin cost more than the bin's memory traffic. With
// `separable` set, λ(k1, k2) = lam_rows[k1]·lam_cols[k2] (a separable PSF: no n1×n2 table on the device).
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif
// occupancy floors (resident blocks of 256 threads per SM): the compiler keeps the filter's double
// arithmetic of a group of four within 128 registers (192 unbounded: one block per SM) and the ratio's
// within 80 (96 unbounded), for float without spilling (nvcc 13, sm_90)
#ifndef XRFGPU_FILTER_MIN_BLOCKS
#define XRFGPU_FILTER_MIN_BLOCKS 2
#endif
#ifndef XRFGPU_RATIO_MIN_BLOCKS
#define XRFGPU_RATIO_MIN_BLOCKS 3
#endif
#if defined(XRFGPU_CUDA)
#define XRFGPU_FILTER_BOUNDS __launch_bounds__(256, XRFGPU_FILTER_MIN_BLOCKS)
#define XRFGPU_RATIO_BOUNDS __launch_bounds__(256, XRFGPU_RATIO_MIN_BLOCKS)
#else
#define XRFGPU_FILTER_BOUNDS
#define XRFGPU_RATIO_BOUNDS
#endif

namespace xrfgpu {

// 2 Re{ w2 (w1 a + conj(w1) b) } for complex a, b and twiddles w = (wr, wi)
XRFGPU_HD double dct_coefficient(double w1r, double w1i, double w2r, double w2i, double ar, double ai, double br,
                                 double bi) {
    const double sr = (w1r * ar - w1i * ai) + (w1r * br + w1i * bi);
    const double si = (w1r * ai + w1i * ar) + (w1r * bi - w1i * br);
    return 2.0 * (w2r * sr - w2i * si);
}

template <typename T>
XRFGPU_LOOP void reflect_dct_filter_loop(T* __restrict__ spectrum, const T* __restrict__ lam,
                                         const T* __restrict__ lam_rows, const T* __restrict__ lam_cols,
                                         int separable, long long planes, long long n1, long long n2,
                                         long long lam_planes, double scale, const double* __restrict__ tw1,
                                         const double* __restrict__ tw2) {
    const long long half = n2 / 2 + 1;
    const long long rows = n1 / 2 + 1;
    // rows (p, k1) along the grid's second dimension, k2 along the first in column groups (XRFGPU_COLUMN_LOOP):
    // one division per row, and each thread loads its group's bins before it computes and stores them
    XRFGPU_GRID_LOOP_Y(row, planes * rows) {
        const long long p = row / rows;
        const long long k1 = row - p * rows;
        const long long j1 = (k1 == 0) ? 0 : n1 - k1;
        T* plane = spectrum + 2 * p * n1 * half;
        T* row_k = plane + 2 * k1 * half;  // bins (k1, ·)
        T* row_j = plane + 2 * j1 * half;  // bins (n1 − k1, ·)
        const long long lplane = (lam_planes == 1) ? 0 : p;
        const T* lp = lam + lplane * n1 * n2;
        const T* lr = lam_rows + lplane * n1;
        const T* lc = lam_cols + lplane * n2;
        // λ(a, c): the full table, or the outer product of the per-axis eigenvalues of a separable PSF
#define XRFGPU_LAMBDA(a, c) (separable ? (double)lr[a] * (double)lc[c] : (double)lp[(a) * n2 + (c)])
        // twiddles W_N(k) = exp(−iπk / 2N) from the tables (cos πk/2N, sin πk/2N), k = 0 … N
        const double a1r = tw1[2 * k1], a1i = -tw1[2 * k1 + 1];  // W1(k1)
        const double b1r = tw1[2 * j1], b1i = -tw1[2 * j1 + 1];  // W1(j1)
        XRFGPU_COLUMN_LOOP(c0, half, XRFGPU_GROUP) {
            T bins[XRFGPU_GROUP][4];  // P = (k1, k2) and Q = (j1, k2), real and imaginary parts
            XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                const long long k2 = XRFGPU_COLUMN(c0, u);
                if (k2 < half) {
                    bins[u][0] = row_k[2 * k2];
                    bins[u][1] = row_k[2 * k2 + 1];
                    bins[u][2] = row_j[2 * k2];
                    bins[u][3] = row_j[2 * k2 + 1];
                }
            }
            XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                const long long k2 = XRFGPU_COLUMN(c0, u);
                if (k2 >= half) continue;
                const long long b = n2 - k2;  // == n2 (no such coefficient) when k2 == 0
                const double pr = bins[u][0], pi = bins[u][1], qr = bins[u][2], qi = bins[u][3];
                const double a2r = tw2[2 * k2], a2i = -tw2[2 * k2 + 1];  // W2(k2)
                const double b2r = tw2[2 * b], b2i = -tw2[2 * b + 1];    // W2(n2 − k2)
                // the orbit's DCT coefficients, scaled by λ; V(k1, n2−k2) = conj Q, V(j1, n2−k2) = conj P
                const double lkk = XRFGPU_LAMBDA(k1, k2) * scale, ljk = XRFGPU_LAMBDA(j1, k2) * scale;
                const double xkk = dct_coefficient(a1r, a1i, a2r, a2i, pr, pi, qr, qi) * lkk;
                const double xjk = dct_coefficient(b1r, b1i, a2r, a2i, qr, qi, pr, pi) * ljk;
                double xkb = 0.0, xjb = 0.0;
                if (b < n2) {
                    xkb = dct_coefficient(a1r, a1i, b2r, b2i, qr, -qi, pr, -pi) * (XRFGPU_LAMBDA(k1, b) * scale);
                    xjb = dct_coefficient(b1r, b1i, b2r, b2i, pr, -pi, qr, -qi) * (XRFGPU_LAMBDA(j1, b) * scale);
                }
                // back to the spectrum:
                //   V = conj(W1) conj(W2) [(X(k) − X(N−k1, N−k2)) − i (X(N−k1, k2) + X(k1, N−k2))] / 4,
                // X(n1, ·) = 0 for k1 == 0
                const double mirror_kb = (k1 == 0) ? 0.0 : xjb;
                const double mirror_k = (k1 == 0) ? 0.0 : xjk;
                {
                    const double re = 0.25 * (xkk - mirror_kb), im = -0.25 * (mirror_k + xkb);
                    // times conj(W1(k1)) conj(W2(k2)) = (a1r − i a1i)(a2r − i a2i)
                    const double wr = a1r * a2r - a1i * a2i, wi = -(a1r * a2i + a1i * a2r);
                    row_k[2 * k2] = (T)(re * wr - im * wi);
                    row_k[2 * k2 + 1] = (T)(re * wi + im * wr);
                }
                if (j1 != k1) {
                    const double re = 0.25 * (xjk - xkb), im = -0.25 * (xkk + xjb);
                    const double wr = b1r * a2r - b1i * a2i, wi = -(b1r * a2i + b1i * a2r);
                    row_j[2 * k2] = (T)(re * wr - im * wi);
                    row_j[2 * k2 + 1] = (T)(re * wi + im * wr);
                }
            }
        }
#undef XRFGPU_LAMBDA
    }
}

// The RL ratio of the dctfft iteration, read from the map in its own order: the estimate and the blur
// live in Makhoul order (sample (r, c) of a map sits at (makhoul_target(r), makhoul_target(c))), so
//   blurred[p, makhoul_target(r), makhoul_target(c)] ← y[p, r, c] / max(blurred + b, eps)
// (the arithmetic of _elementwise.rl_ratio; b and eps broadcast over the reordered canvas) and no
// reordered copy of the map is kept on the device. The blur's rows are `ld` ≥ cols values apart (the
// padded rows of an in-place real FFT: ld = 2 (cols / 2 + 1)); columns cols … ld − 1 are not touched.
// Source rows run along the grid's second dimension, column pairs in groups along the first
// (XRFGPU_COLUMN_LOOP). One work item per pair of source columns (2j, 2j + 1) of a source row: it reads
// them side by side and writes reordered columns j and cols − 1 − j of the row's reordered position, so
// reads and writes stay coalesced.
template <typename T>
XRFGPU_LOOP void rl_ratio_makhoul_loop(const T* __restrict__ data, T* __restrict__ blurred, long long planes,
                                       long long rows, long long cols, long long ld, const T* __restrict__ background,
                                       long long b_size, long long b_plane, const T* __restrict__ eps,
                                       long long e_size, long long e_plane) {
    const long long plane = rows * cols;
    const long long pairs = (cols + 1) / 2;
    XRFGPU_GRID_LOOP_Y(source_row, planes * rows) {
        const long long p = source_row / rows;
        const long long r = source_row - p * rows;
        const T* src = data + p * plane + r * cols;
        const long long target = makhoul_target(r, rows);
        T* out = blurred + (p * rows + target) * ld;     // the row in the blur's layout (row stride ld)
        const long long dense = p * plane + target * cols;  // the row's flat index in a map, for b and eps
        // column pairs in groups: the group's data and blur are loaded before any ratio is stored (the even
        // targets j < (cols + 1) / 2 and the odd ones cols − 1 − j ≥ cols / 2 never meet)
        XRFGPU_COLUMN_LOOP(j0, pairs, XRFGPU_GROUP) {
            T y_even[XRFGPU_GROUP], y_odd[XRFGPU_GROUP], blur_even[XRFGPU_GROUP],
                blur_odd[XRFGPU_GROUP];
            XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                const long long j = XRFGPU_COLUMN(j0, u);
                if (j < pairs) {
                    y_even[u] = src[2 * j];
                    blur_even[u] = out[j];
                    if (2 * j + 1 < cols) {
                        y_odd[u] = src[2 * j + 1];
                        blur_odd[u] = out[cols - 1 - j];
                    }
                }
            }
            XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                const long long j = XRFGPU_COLUMN(j0, u);
                if (j >= pairs) continue;
                const long long even = dense + j;
                out[j] = rl_ratio(y_even[u], blur_even[u], background[bcast_index(even, b_size, b_plane)],
                                  eps[bcast_index(even, e_size, e_plane)]);
                if (2 * j + 1 < cols) {
                    const long long odd = cols - 1 - j;
                    out[odd] = rl_ratio(y_odd[u], blur_odd[u], background[bcast_index(dense + odd, b_size, b_plane)],
                                        eps[bcast_index(dense + odd, e_size, e_plane)]);
                }
            }
        }
    }
}

// The estimate back in the map's own order, read from its Makhoul-ordered rows `ld` ≥ cols values apart
// (the GPU iteration's padded layout): out[p, r, c] = canvas[p, makhoul_target(r), makhoul_target(c)], the
// crop and the un-reordering in one pass (xrfgpu.fft.Convolution.crop makes two gathers and a temporary).
// The same walk as the ratio above: source rows along the grid's second dimension, column pairs in groups.
template <typename T>
XRFGPU_LOOP void makhoul_unorder_loop(const T* __restrict__ canvas, T* __restrict__ out, long long planes,
                                      long long rows, long long cols, long long ld) {
    const long long pairs = (cols + 1) / 2;
    XRFGPU_GRID_LOOP_Y(source_row, planes * rows) {
        const long long p = source_row / rows;
        const long long r = source_row - p * rows;
        const T* from = canvas + (p * rows + makhoul_target(r, rows)) * ld;
        T* to = out + (p * rows + r) * cols;
        XRFGPU_COLUMN_LOOP(j0, pairs, XRFGPU_GROUP) {
            XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                const long long j = XRFGPU_COLUMN(j0, u);
                if (j < pairs) {
                    to[2 * j] = from[j];
                    if (2 * j + 1 < cols) to[2 * j + 1] = from[cols - 1 - j];
                }
            }
        }
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL XRFGPU_RATIO_BOUNDS xrfgpu_rl_ratio_makhoul_f32(const float* data, float* blurred, long long planes,
                                                             long long rows, long long cols, long long ld,
                                                             const float* background, long long b_size,
                                                             long long b_plane, const float* eps, long long e_size,
                                                             long long e_plane) {
    xrfgpu::rl_ratio_makhoul_loop<float>(data, blurred, planes, rows, cols, ld, background, b_size, b_plane, eps,
                                         e_size, e_plane);
}
XRFGPU_KERNEL XRFGPU_RATIO_BOUNDS xrfgpu_rl_ratio_makhoul_f64(const double* data, double* blurred, long long planes,
                                                             long long rows, long long cols, long long ld,
                                                             const double* background, long long b_size,
                                                             long long b_plane, const double* eps, long long e_size,
                                                             long long e_plane) {
    xrfgpu::rl_ratio_makhoul_loop<double>(data, blurred, planes, rows, cols, ld, background, b_size, b_plane, eps,
                                          e_size, e_plane);
}

XRFGPU_KERNEL XRFGPU_FILTER_BOUNDS xrfgpu_reflect_dct_filter_f32(float* spectrum, const float* lam,
                                                                 const float* lam_rows, const float* lam_cols,
                                                                 int separable, long long planes, long long n1,
                                                                 long long n2, long long lam_planes, double scale,
                                                                 const double* tw1, const double* tw2) {
    xrfgpu::reflect_dct_filter_loop<float>(spectrum, lam, lam_rows, lam_cols, separable, planes, n1, n2, lam_planes,
                                           scale, tw1, tw2);
}
XRFGPU_KERNEL XRFGPU_FILTER_BOUNDS xrfgpu_reflect_dct_filter_f64(double* spectrum, const double* lam,
                                                                 const double* lam_rows, const double* lam_cols,
                                                                 int separable, long long planes, long long n1,
                                                                 long long n2, long long lam_planes, double scale,
                                                                 const double* tw1, const double* tw2) {
    xrfgpu::reflect_dct_filter_loop<double>(spectrum, lam, lam_rows, lam_cols, separable, planes, n1, n2,
                                            lam_planes, scale, tw1, tw2);
}

XRFGPU_KERNEL xrfgpu_makhoul_unorder_f32(const float* canvas, float* out, long long planes, long long rows,
                                         long long cols, long long ld) {
    xrfgpu::makhoul_unorder_loop<float>(canvas, out, planes, rows, cols, ld);
}
XRFGPU_KERNEL xrfgpu_makhoul_unorder_f64(const double* canvas, double* out, long long planes, long long rows,
                                         long long cols, long long ld) {
    xrfgpu::makhoul_unorder_loop<double>(canvas, out, planes, rows, cols, ld);
}
