// fista.cu — one FISTA step in one pass (see xrfgpu_ops.cuh, xrfgpu::fista_step).
//
// Reads z, ∇f(z) and x_prev; writes x_new over the gradient (scratch) and the
// next extrapolation point into z_new. The *_planes variant takes the step
// and threshold as one value per map of a stack (length n / plane).
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

template <typename T>
XRFGPU_LOOP void fista_step_loop(const T* __restrict__ point, T* __restrict__ gradient, const T* __restrict__ previous,
                                 T* __restrict__ z_new, long long n, const T* __restrict__ step, long long s_size,
                                 long long s_plane, const T* __restrict__ threshold, long long t_size,
                                 long long t_plane, T momentum, int nonneg) {
    XRFGPU_GRID_LOOP(i, n) {
        T x, z;
        fista_step(point[i], gradient[i], previous[i], step[bcast_index(i, s_size, s_plane)],
                   threshold[bcast_index(i, t_size, t_plane)], momentum, nonneg, &x, &z);
        gradient[i] = x;
        z_new[i] = z;
    }
}

template <typename T>
XRFGPU_LOOP void fista_step_scalar_loop(const T* __restrict__ point, T* __restrict__ gradient,
                                        const T* __restrict__ previous, T* __restrict__ z_new, long long n, T step,
                                        T threshold, T momentum, int nonneg) {
    XRFGPU_GRID_LOOP(i, n) {
        T x, z;
        fista_step(point[i], gradient[i], previous[i], step, threshold, momentum, nonneg, &x, &z);
        gradient[i] = x;
        z_new[i] = z;
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_fista_step_scalar_f32(const float* point, float* gradient, const float* previous, float* z_new,
                                           long long n, float step, float threshold, float momentum, int nonneg) {
    xrfgpu::fista_step_scalar_loop<float>(point, gradient, previous, z_new, n, step, threshold, momentum, nonneg);
}
XRFGPU_KERNEL xrfgpu_fista_step_scalar_f64(const double* point, double* gradient, const double* previous,
                                           double* z_new, long long n, double step, double threshold,
                                           double momentum, int nonneg) {
    xrfgpu::fista_step_scalar_loop<double>(point, gradient, previous, z_new, n, step, threshold, momentum, nonneg);
}

XRFGPU_KERNEL xrfgpu_fista_step_bcast_f32(const float* point, float* gradient, const float* previous, float* z_new,
                                          long long n, const float* step, long long s_size, long long s_plane,
                                          const float* threshold, long long t_size, long long t_plane, float momentum,
                                          int nonneg) {
    xrfgpu::fista_step_loop<float>(point, gradient, previous, z_new, n, step, s_size, s_plane, threshold, t_size,
                                   t_plane, momentum, nonneg);
}
XRFGPU_KERNEL xrfgpu_fista_step_bcast_f64(const double* point, double* gradient, const double* previous,
                                          double* z_new, long long n, const double* step, long long s_size,
                                          long long s_plane, const double* threshold, long long t_size,
                                          long long t_plane, double momentum, int nonneg) {
    xrfgpu::fista_step_loop<double>(point, gradient, previous, z_new, n, step, s_size, s_plane, threshold, t_size,
                                    t_plane, momentum, nonneg);
}
