// l0.cu — the L0 hard-threshold steps of the blind method (Pan et al. 2014).
//
// l0_intensity: u = S where S² ≥ t, else 0.
// l0_gradient_term: the joint gradient threshold fused with the circular
// forward differences and their adjoints, returning Dxᵀh + Dyᵀv for every
// pixel of every map (planes of rows × cols) in one pass, without storing
// h and v (each thread recomputes the three thresholded pairs it needs).
// l0_solve: the closed-form image update on the half spectrum,
//   S_hat = scale · (fixed + β·G) / ((|K|² + β·|D|²) + β_p),
// in place over G (interleaved complex), with the arithmetic of image_step.py's NumPy expression
// (scale = 1/(N·M) folds cuFFT's unnormalised inverse in; 1 reproduces the expression itself).
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
        long long p, r, c;
        plane_row_col(i, plane, cols, &p, &r, &c);
        out[i] = l0_gradient_term_at(image + p * plane, rows, cols, r, c, t);
    }
}

template <typename T>
XRFGPU_LOOP void l0_solve_loop(const T* __restrict__ fixed, T* __restrict__ g, const T* __restrict__ otf_power,
                               const T* __restrict__ grad_power, long long n, T beta, T beta_pixel, T scale) {
    XRFGPU_GRID_LOOP(i, n) {
        const T denominator = xg_add(xg_add(otf_power[i], xg_mul(beta, grad_power[i])), beta_pixel);
        const T re = xg_div(xg_add(fixed[2 * i], xg_mul(beta, g[2 * i])), denominator);
        const T im = xg_div(xg_add(fixed[2 * i + 1], xg_mul(beta, g[2 * i + 1])), denominator);
        g[2 * i] = xg_mul(re, scale);
        g[2 * i + 1] = xg_mul(im, scale);
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

XRFGPU_KERNEL xrfgpu_l0_solve_f32(const float* fixed, float* g, const float* otf_power, const float* grad_power,
                                  long long n, float beta, float beta_pixel, float scale) {
    xrfgpu::l0_solve_loop<float>(fixed, g, otf_power, grad_power, n, beta, beta_pixel, scale);
}
XRFGPU_KERNEL xrfgpu_l0_solve_f64(const double* fixed, double* g, const double* otf_power, const double* grad_power,
                                  long long n, double beta, double beta_pixel, double scale) {
    xrfgpu::l0_solve_loop<double>(fixed, g, otf_power, grad_power, n, beta, beta_pixel, scale);
}
