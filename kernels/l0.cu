// l0.cu — the L0 hard-threshold steps of the blind method (Pan et al. 2014).
//
// l0_intensity: u = S where S² ≥ t, else 0.
// l0_gradient_term: the joint gradient threshold fused with the circular
// forward differences and their adjoints, returning Dxᵀh + Dyᵀv for every
// pixel of every map (planes of rows × cols) in one pass, without storing
// h and v (each thread recomputes the three thresholded pairs it needs).
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

template <typename T>
XRFGPU_LOOP void l0_intensity_loop(const T* __restrict__ image, T* __restrict__ out, long long n, T t) {
    XRFGPU_GRID_LOOP(i, n) { out[i] = l0_intensity(image[i], t); }
}

template <typename T>
XRFGPU_LOOP void l0_gradient_term_loop(const T* __restrict__ image, T* __restrict__ out, long long n_planes,
                                       long long rows, long long cols, T t) {
    const long long plane = rows * cols;
    XRFGPU_GRID_LOOP(i, n_planes * plane) {
        const long long p = i / plane;
        const long long k = i - p * plane;
        const long long r = k / cols;
        const long long c = k - r * cols;
        out[i] = l0_gradient_term_at(image + p * plane, rows, cols, r, c, t);
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_l0_intensity_f32(const float* image, float* out, long long n, float t) {
    xrfgpu::l0_intensity_loop<float>(image, out, n, t);
}
XRFGPU_KERNEL xrfgpu_l0_intensity_f64(const double* image, double* out, long long n, double t) {
    xrfgpu::l0_intensity_loop<double>(image, out, n, t);
}

XRFGPU_KERNEL xrfgpu_l0_gradient_term_f32(const float* image, float* out, long long n_planes, long long rows,
                                          long long cols, float t) {
    xrfgpu::l0_gradient_term_loop<float>(image, out, n_planes, rows, cols, t);
}
XRFGPU_KERNEL xrfgpu_l0_gradient_term_f64(const double* image, double* out, long long n_planes, long long rows,
                                          long long cols, double t) {
    xrfgpu::l0_gradient_term_loop<double>(image, out, n_planes, rows, cols, t);
}
