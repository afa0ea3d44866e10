// reflect_canvas.cu — the extended engine's canvas steps for the GPU RL iteration (xrfgpu/_gpu_rl.py),
// for PSFs the "dctfft" engine cannot take (not symmetric along both axes, e.g. a tilted spot).
//
// The exact reflect operator is A = C·H·E (xrfgpu/fft.py, the extended engine): E extends the map by
// half-sample reflection as far as the PSF reaches (b0 rows above, a0 below, b1 columns left, a1 right)
// onto a zero transform canvas of H × W, H the canvas convolution, C the crop back to the map. Its
// adjoint is Eᵀ·Hᵀ·Cᵀ. Three kernels replace the engine's slicing, flips, zero fills and copies:
//
//   reflect_embed:  canvas = E x  (every canvas element written: the reflected map or 0)
//   crop_ratio:     canvas = Cᵀ [ y / max(scale·C canvas + b, eps) ]  in place (0 outside the map),
//                   the RL ratio of the blurred canvas, placed for the adjoint
//   reflect_fold:   work = scale · Eᵀ canvas  (each map pixel sums the canvas positions that reflect
//                   onto it, rows folded first and then columns, as the NumPy engine adds them)
//
// `scale` is cuFFT's unnormalised inverse, 1/(H·W).
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

// map index of canvas coordinate t along an axis of n map samples placed after `before` samples of
// reflection: half-sample symmetric (…, x1, x0 | x0, x1, …, x_{n−1} | x_{n−1}, …)
XRFGPU_HD long long reflect_source(long long t, long long before, long long n) {
    long long i = t - before;
    if (i < 0) i = -1 - i;
    if (i >= n) i = 2 * n - 1 - i;
    return i;
}

template <typename T>
XRFGPU_LOOP void reflect_embed_loop(T* __restrict__ canvas, const T* __restrict__ x, long long planes,
                                    long long rows, long long cols, long long height, long long width,
                                    long long b0, long long a0, long long b1, long long a1) {
    const long long cplane = height * width;
    XRFGPU_GRID_LOOP(i, planes * cplane) {
        long long p, r, c;
        plane_row_col(i, cplane, width, &p, &r, &c);
        T v = T(0);
        if (r < b0 + rows + a0 && c < b1 + cols + a1) {
            v = x[p * rows * cols + reflect_source(r, b0, rows) * cols + reflect_source(c, b1, cols)];
        }
        canvas[i] = v;
    }
}

template <typename T>
XRFGPU_LOOP void crop_ratio_loop(T* __restrict__ canvas, const T* __restrict__ y, long long planes, long long rows,
                                 long long cols, long long height, long long width, long long b0, long long b1,
                                 T scale, const T* __restrict__ background, long long b_size, long long b_plane,
                                 const T* __restrict__ eps, long long e_size, long long e_plane) {
    const long long cplane = height * width;
    XRFGPU_GRID_LOOP(i, planes * cplane) {
        long long p, r, c;
        plane_row_col(i, cplane, width, &p, &r, &c);
        r -= b0;  // map coordinates
        c -= b1;
        T v = T(0);
        if (r >= 0 && r < rows && c >= 0 && c < cols) {
            const long long m = p * rows * cols + r * cols + c;  // the map element
            v = rl_ratio(y[m], xg_mul(canvas[i], scale), background[bcast_index(m, b_size, b_plane)],
                         eps[bcast_index(m, e_size, e_plane)]);
        }
        canvas[i] = v;
    }
}

// the canvas positions along one axis that reflect onto map index i: the direct one, the one in the
// leading strip (if i < before) and the one in the trailing strip (if i ≥ n − after); −1 when absent
XRFGPU_HD void reflect_images(long long i, long long before, long long after, long long n, long long* direct,
                              long long* lead, long long* trail) {
    *direct = before + i;
    *lead = (i < before) ? before - 1 - i : -1;
    *trail = (i >= n - after) ? before + n + (n - 1 - i) : -1;
}

template <typename T>
XRFGPU_HD T fold_row(const T* plane, long long width, long long r_direct, long long r_lead, long long r_trail,
                     long long c) {
    T v = plane[r_direct * width + c];
    if (r_lead >= 0) v = xg_add(v, plane[r_lead * width + c]);
    if (r_trail >= 0) v = xg_add(v, plane[r_trail * width + c]);
    return v;
}

template <typename T>
XRFGPU_LOOP void reflect_fold_loop(const T* __restrict__ canvas, T* __restrict__ out, long long planes,
                                   long long rows, long long cols, long long height, long long width, long long b0,
                                   long long a0, long long b1, long long a1, T scale) {
    const long long plane = rows * cols;
    XRFGPU_GRID_LOOP(m, planes * plane) {
        long long p, i, j;
        plane_row_col(m, plane, cols, &p, &i, &j);
        const T* cp = canvas + p * height * width;
        long long rd, rl, rt, cd, cl, ct;
        reflect_images(i, b0, a0, rows, &rd, &rl, &rt);
        reflect_images(j, b1, a1, cols, &cd, &cl, &ct);
        T v = fold_row(cp, width, rd, rl, rt, cd);
        if (cl >= 0) v = xg_add(v, fold_row(cp, width, rd, rl, rt, cl));
        if (ct >= 0) v = xg_add(v, fold_row(cp, width, rd, rl, rt, ct));
        out[m] = xg_mul(v, scale);
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_reflect_embed_f32(float* canvas, const float* x, long long planes, long long rows,
                                       long long cols, long long height, long long width, long long b0, long long a0,
                                       long long b1, long long a1) {
    xrfgpu::reflect_embed_loop<float>(canvas, x, planes, rows, cols, height, width, b0, a0, b1, a1);
}
XRFGPU_KERNEL xrfgpu_reflect_embed_f64(double* canvas, const double* x, long long planes, long long rows,
                                       long long cols, long long height, long long width, long long b0, long long a0,
                                       long long b1, long long a1) {
    xrfgpu::reflect_embed_loop<double>(canvas, x, planes, rows, cols, height, width, b0, a0, b1, a1);
}

XRFGPU_KERNEL xrfgpu_crop_ratio_f32(float* canvas, const float* y, long long planes, long long rows, long long cols,
                                    long long height, long long width, long long b0, long long b1, float scale,
                                    const float* background, long long b_size, long long b_plane, const float* eps,
                                    long long e_size, long long e_plane) {
    xrfgpu::crop_ratio_loop<float>(canvas, y, planes, rows, cols, height, width, b0, b1, scale, background, b_size,
                                   b_plane, eps, e_size, e_plane);
}
XRFGPU_KERNEL xrfgpu_crop_ratio_f64(double* canvas, const double* y, long long planes, long long rows,
                                    long long cols, long long height, long long width, long long b0, long long b1,
                                    double scale, const double* background, long long b_size, long long b_plane,
                                    const double* eps, long long e_size, long long e_plane) {
    xrfgpu::crop_ratio_loop<double>(canvas, y, planes, rows, cols, height, width, b0, b1, scale, background, b_size,
                                    b_plane, eps, e_size, e_plane);
}

XRFGPU_KERNEL xrfgpu_reflect_fold_f32(const float* canvas, float* out, long long planes, long long rows,
                                      long long cols, long long height, long long width, long long b0, long long a0,
                                      long long b1, long long a1, float scale) {
    xrfgpu::reflect_fold_loop<float>(canvas, out, planes, rows, cols, height, width, b0, a0, b1, a1, scale);
}
XRFGPU_KERNEL xrfgpu_reflect_fold_f64(const double* canvas, double* out, long long planes, long long rows,
                                      long long cols, long long height, long long width, long long b0, long long a0,
                                      long long b1, long long a1, double scale) {
    xrfgpu::reflect_fold_loop<double>(canvas, out, planes, rows, cols, height, width, b0, a0, b1, a1, scale);
}
