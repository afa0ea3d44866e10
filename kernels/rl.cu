// rl.cu — Richardson–Lucy ratio and update (see xrfgpu_ops.cuh for the arithmetic).
//
// rl_ratio writes y / max(h⊛x + b, eps) over `blurred` in place (one pass: the
// background add, the guard and the division are fused); rl_update writes
// x · c over `correction` in place (rl_update_inplace: over the estimate). The *_bcast variant takes the background
// and eps as broadcast operands (xrfgpu::bcast_index): a canvas map, one
// value per map of a stack, or a scalar.
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

template <typename T>
XRFGPU_LOOP void rl_ratio_scalar_loop(const T* __restrict__ data, T* __restrict__ blurred, long long n, T background,
                                      T eps, int has_background) {
    if (has_background) {
        XRFGPU_GRID_LOOP(i, n) { blurred[i] = rl_ratio(data[i], blurred[i], background, eps); }
    } else {
        XRFGPU_GRID_LOOP(i, n) { blurred[i] = rl_ratio_nobg(data[i], blurred[i], eps); }
    }
}

template <typename T>
XRFGPU_LOOP void rl_ratio_bcast_loop(const T* __restrict__ data, T* __restrict__ blurred, long long n,
                                     const T* __restrict__ background, long long b_size, long long b_plane,
                                     const T* __restrict__ eps, long long e_size, long long e_plane) {
    XRFGPU_GRID_LOOP(i, n) {
        blurred[i] = rl_ratio(data[i], blurred[i], background[bcast_index(i, b_size, b_plane)],
                              eps[bcast_index(i, e_size, e_plane)]);
    }
}

template <typename T>
XRFGPU_LOOP void rl_update_loop(const T* __restrict__ estimate, T* __restrict__ correction, long long n) {
    XRFGPU_GRID_LOOP(i, n) { correction[i] = rl_update(estimate[i], correction[i]); }
}

// the same update written over the estimate (the GPU iteration keeps its buffers: xrfgpu/_gpu_rl.py)
template <typename T>
XRFGPU_LOOP void rl_update_inplace_loop(T* __restrict__ estimate, const T* __restrict__ correction, long long n) {
    XRFGPU_GRID_LOOP(i, n) { estimate[i] = rl_update(estimate[i], correction[i]); }
}

// the same update over maps whose rows are `ld` ≥ cols values apart (the padded rows of the GPU iteration's
// in-place real FFTs): `lines` = planes · rows rows along the grid's second dimension, each row's columns in
// groups (XRFGPU_COLUMN_LOOP), the padding untouched
template <typename T>
XRFGPU_LOOP void rl_update_rows_loop(T* __restrict__ estimate, const T* __restrict__ correction, long long lines,
                                     long long cols, long long ld) {
    XRFGPU_GRID_LOOP_Y(line, lines) {
        T* x = estimate + line * ld;
        const T* c = correction + line * ld;
        XRFGPU_COLUMN_LOOP(j0, cols, XRFGPU_GROUP) {
            T xv[XRFGPU_GROUP], cv[XRFGPU_GROUP];
            XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                const long long j = XRFGPU_COLUMN(j0, u);
                if (j < cols) {
                    xv[u] = x[j];
                    cv[u] = c[j];
                }
            }
            XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                const long long j = XRFGPU_COLUMN(j0, u);
                if (j < cols) x[j] = rl_update(xv[u], cv[u]);
            }
        }
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_rl_ratio_scalar_f32(const float* data, float* blurred, long long n, float background, float eps,
                                         int has_background) {
    xrfgpu::rl_ratio_scalar_loop<float>(data, blurred, n, background, eps, has_background);
}
XRFGPU_KERNEL xrfgpu_rl_ratio_scalar_f64(const double* data, double* blurred, long long n, double background,
                                         double eps, int has_background) {
    xrfgpu::rl_ratio_scalar_loop<double>(data, blurred, n, background, eps, has_background);
}

XRFGPU_KERNEL xrfgpu_rl_ratio_bcast_f32(const float* data, float* blurred, long long n, const float* background,
                                        long long b_size, long long b_plane, const float* eps, long long e_size,
                                        long long e_plane) {
    xrfgpu::rl_ratio_bcast_loop<float>(data, blurred, n, background, b_size, b_plane, eps, e_size, e_plane);
}
XRFGPU_KERNEL xrfgpu_rl_ratio_bcast_f64(const double* data, double* blurred, long long n, const double* background,
                                        long long b_size, long long b_plane, const double* eps, long long e_size,
                                        long long e_plane) {
    xrfgpu::rl_ratio_bcast_loop<double>(data, blurred, n, background, b_size, b_plane, eps, e_size, e_plane);
}

XRFGPU_KERNEL xrfgpu_rl_update_f32(const float* estimate, float* correction, long long n) {
    xrfgpu::rl_update_loop<float>(estimate, correction, n);
}
XRFGPU_KERNEL xrfgpu_rl_update_f64(const double* estimate, double* correction, long long n) {
    xrfgpu::rl_update_loop<double>(estimate, correction, n);
}

XRFGPU_KERNEL xrfgpu_rl_update_inplace_f32(float* estimate, const float* correction, long long n) {
    xrfgpu::rl_update_inplace_loop<float>(estimate, correction, n);
}
XRFGPU_KERNEL xrfgpu_rl_update_inplace_f64(double* estimate, const double* correction, long long n) {
    xrfgpu::rl_update_inplace_loop<double>(estimate, correction, n);
}
XRFGPU_KERNEL xrfgpu_rl_update_rows_f32(float* estimate, const float* correction, long long lines, long long cols,
                                       long long ld) {
    xrfgpu::rl_update_rows_loop<float>(estimate, correction, lines, cols, ld);
}
XRFGPU_KERNEL xrfgpu_rl_update_rows_f64(double* estimate, const double* correction, long long lines, long long cols,
                                       long long ld) {
    xrfgpu::rl_update_rows_loop<double>(estimate, correction, lines, cols, ld);
}
