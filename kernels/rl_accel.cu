// rl_accel.cu — Biggs–Andrews accelerated Richardson–Lucy with the step length kept on the device
// (xrfgpu/_gpu_rl.py runs them; xrfgpu/richardson_lucy.py is the reference loop).
//
// The reference computes α = clip(⟨g1, g2⟩ / (⟨g2, g2⟩ + 1e-300), 0, 1) on the host every
// iteration (g1: the last change x_new − point, g2: the one before), which stops the GPU once per
// iteration. Here the two inner products are accumulated in double by the update kernel of one
// iteration (one pair of sums per map of a stack: acc[2p], acc[2p + 1]) and read by the
// extrapolation kernel of the next, so a whole iteration is one CUDA graph with no host wait.
//
//   rl_extrapolate_dev:  point = max(x + α (x − x_prev), 0), written over x_prev
//                        (the arithmetic of _elementwise.rl_extrapolate, α rounded to T)
//   rl_update_accel:     new = point · c;  g = new − point;  x_prev ← x;  x ← new;
//                        g1 ← g;  acc += (⟨g, g1_old⟩, ⟨g1_old, g1_old⟩)
//
// The reference keeps g2 only to form those two products; here they are formed while g1_old is
// still at hand, so no g2 buffer exists (one map's bytes less on the device).
//
// With g1 = 0 and acc = 0 at the start, α is 0 for the first two iterations, as in the
// reference (which extrapolates only once two changes exist).
//
// The maps may have padded rows (`ld` ≥ cols values apart: the layout of the GPU iteration's in-place
// real FFTs). The update reads and writes only columns < cols. The extrapolation runs over whole
// padded maps: their padding is zero in x and x_prev and stays zero (max(0 + α·0, 0)).
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

XRFGPU_HD double accel_alpha(const double* acc, long long p) {
    double a = acc[2 * p] / (acc[2 * p + 1] + 1e-300);
    return (a < 0.0) ? 0.0 : ((a > 1.0) ? 1.0 : a);
}

template <typename T>
XRFGPU_LOOP void rl_extrapolate_dev_loop(const T* __restrict__ x, T* __restrict__ x_prev,
                                         const double* __restrict__ acc, long long n, long long plane) {
    // maps along the grid's second dimension: the step length is read once per map, not per element
    XRFGPU_GRID_LOOP_Y(p, n / plane) {
        const T alpha = (T)accel_alpha(acc, p);
        const long long base = p * plane;
        XRFGPU_GRID_LOOP(j, plane) {
            const long long i = base + j;
            const T v = xg_add(xg_mul(xg_sub(x[i], x_prev[i]), alpha), x[i]);
            x_prev[i] = xg_max(v, T(0));
        }
    }
}

// one element of the update from its loaded values (point = x_prev[i], correction = work[i], g1[i],
// x[i]): stores the new x_prev, x and g1 at i and adds the two products to accumulate
template <typename T>
XRFGPU_HD void rl_update_accel_store(T* x, T* x_prev, T* g1, long long i, T point, T correction, T g1_old, T x_old,
                                     double* s12, double* s22) {
    const T fresh = rl_update(point, correction);
    const T change = xg_sub(fresh, point);
    x_prev[i] = x_old;
    x[i] = fresh;
    g1[i] = change;
    *s12 += (double)change * (double)g1_old;
    *s22 += (double)g1_old * (double)g1_old;
}

// one element of the update, loaded and stored in place
template <typename T>
XRFGPU_HD void rl_update_accel_at(T* x, T* x_prev, const T* work, T* g1, long long i, double* s12,
                                  double* s22) {
    rl_update_accel_store<T>(x, x_prev, g1, i, x_prev[i], work[i], g1[i], x[i], s12, s22);
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_rl_extrapolate_dev_f32(const float* x, float* x_prev, const double* acc, long long n,
                                            long long plane) {
    xrfgpu::rl_extrapolate_dev_loop<float>(x, x_prev, acc, n, plane);
}
XRFGPU_KERNEL xrfgpu_rl_extrapolate_dev_f64(const double* x, double* x_prev, const double* acc, long long n,
                                            long long plane) {
    xrfgpu::rl_extrapolate_dev_loop<double>(x, x_prev, acc, n, plane);
}

#if defined(XRFGPU_CUDA)
// grid (blocks of rows, maps); block 256 threads; block sums by warp shuffles, one atomicAdd per block and
// sum. A block walks whole rows (rows along blockIdx.x, a row's columns along the threads), so the padding
// columns cols … ld − 1 are never read and no index is divided.
template <typename T>
__device__ __forceinline__ void rl_update_accel_kernel(T* x, T* x_prev, const T* work, T* g1, double* acc,
                                                       long long rows, long long cols, long long ld) {
    const long long p = blockIdx.y;
    const long long base = p * rows * ld;
    double s12 = 0.0, s22 = 0.0;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const long long line = base + r * ld;
        // columns in groups of XRFGPU_GROUP, blockDim.x apart: the group's four maps are loaded first
        for (long long c0 = threadIdx.x; c0 < cols; c0 += (long long)blockDim.x * XRFGPU_GROUP) {
            T point[XRFGPU_GROUP], correction[XRFGPU_GROUP], g1_old[XRFGPU_GROUP],
                x_old[XRFGPU_GROUP];
#pragma unroll
            for (int u = 0; u < XRFGPU_GROUP; ++u) {
                const long long c = c0 + (long long)u * blockDim.x;
                if (c < cols) {
                    point[u] = x_prev[line + c];
                    correction[u] = work[line + c];
                    g1_old[u] = g1[line + c];
                    x_old[u] = x[line + c];
                }
            }
#pragma unroll
            for (int u = 0; u < XRFGPU_GROUP; ++u) {
                const long long c = c0 + (long long)u * blockDim.x;
                if (c < cols) {
                    xrfgpu::rl_update_accel_store<T>(x, x_prev, g1, line + c, point[u], correction[u], g1_old[u],
                                                     x_old[u], &s12, &s22);
                }
            }
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        s12 += __shfl_down_sync(0xffffffffu, s12, off);
        s22 += __shfl_down_sync(0xffffffffu, s22, off);
    }
    __shared__ double partial[2][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        partial[0][warp] = s12;
        partial[1][warp] = s22;
    }
    __syncthreads();
    if (warp == 0) {
        const int warps = (blockDim.x + 31) >> 5;
        s12 = (lane < warps) ? partial[0][lane] : 0.0;
        s22 = (lane < warps) ? partial[1][lane] : 0.0;
        for (int off = 16; off > 0; off >>= 1) {
            s12 += __shfl_down_sync(0xffffffffu, s12, off);
            s22 += __shfl_down_sync(0xffffffffu, s22, off);
        }
        if (lane == 0) {
            atomicAdd(&acc[2 * p], s12);
            atomicAdd(&acc[2 * p + 1], s22);
        }
    }
}
#else
template <typename T>
inline void rl_update_accel_kernel(T* x, T* x_prev, const T* work, T* g1, double* acc, long long planes,
                                   long long rows, long long cols, long long ld) {
    for (long long p = 0; p < planes; ++p) {
        double s12 = 0.0, s22 = 0.0;
        for (long long r = 0; r < rows; ++r) {
            for (long long c = 0; c < cols; ++c) {
                xrfgpu::rl_update_accel_at<T>(x, x_prev, work, g1, (p * rows + r) * ld + c, &s12, &s22);
            }
        }
        acc[2 * p] += s12;
        acc[2 * p + 1] += s22;
    }
}
#endif

#if defined(XRFGPU_CUDA)
XRFGPU_KERNEL xrfgpu_rl_update_accel_f32(float* x, float* x_prev, const float* work, float* g1, double* acc,
                                         long long planes, long long rows, long long cols, long long ld) {
    (void)planes;  // the grid's second dimension
    rl_update_accel_kernel<float>(x, x_prev, work, g1, acc, rows, cols, ld);
}
XRFGPU_KERNEL xrfgpu_rl_update_accel_f64(double* x, double* x_prev, const double* work, double* g1, double* acc,
                                         long long planes, long long rows, long long cols, long long ld) {
    (void)planes;
    rl_update_accel_kernel<double>(x, x_prev, work, g1, acc, rows, cols, ld);
}
#else
XRFGPU_KERNEL xrfgpu_rl_update_accel_f32(float* x, float* x_prev, const float* work, float* g1, double* acc,
                                         long long planes, long long rows, long long cols, long long ld) {
    rl_update_accel_kernel<float>(x, x_prev, work, g1, acc, planes, rows, cols, ld);
}
XRFGPU_KERNEL xrfgpu_rl_update_accel_f64(double* x, double* x_prev, const double* work, double* g1, double* acc,
                                         long long planes, long long rows, long long cols, long long ld) {
    rl_update_accel_kernel<double>(x, x_prev, work, g1, acc, planes, rows, cols, ld);
}
#endif
