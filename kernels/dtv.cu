// dtv.cu — the projected dual step of the directional-TV denoiser of joint restoration
// (xrfgpu/_elementwise.py, dtv_dual_step, used by xrfgpu/joint.py; Chambolle 2004), both components in one pass.
//
//   u = p + s·g   (per component; s one value, or one per map of a stack)
//   p ← u / max(|u|, 1)
//
// The arithmetic is the array-API expression's, operation by operation (no FMA):
// ux = px + s·gx, uy = py + s·gy, n = max(sqrt(ux·ux + uy·uy), 1), px = ux / n, py = uy / n.
//
// On CuPy a whole dual iteration runs as two kernels, dtv_primal and dtv_dual_ascent (below; launched by
// xrfgpu.cuda.CudaKernels.dtv_denoise), in place of the array-API loop's ~20 operations.
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

// ---- the dual iteration of _weighted_dtv_denoise (xrfgpu/joint.py) as two kernels ---------------------------
//
// One dual step of Chambolle (2004) on the weighted directional TV (the array-API loop of
// xrfgpu.joint._weighted_dtv_denoise; xrfgpu._elementwise.dtv_denoise_numpy on NumPy):
//
//   q = r · P p,   x = z + λw · div q                      (dtv_primal: p at the pixel and its backward
//                                                           neighbours, written into x)
//   g = r · P ∇x − δ p,   p ← (p + s g) / max(1, |p + s g|)  (dtv_dual_ascent: x at the pixel and its forward
//                                                           neighbours, p updated in place)
//
// with P v = v − γ ξ (ξ · v) pointwise, ∇ forward differences whose last difference is 0 (Neumann,
// joint._gradient) and div = −∇ᵀ, backward differences (joint._divergence):
//   div q (r, c) = (q_x(r, c) − q_x(r, c−1)) + (q_y(r, c) − q_y(r−1, c)),
// where q_x(r, cols−1), q_x(r, −1), q_y(rows−1, c) and q_y(−1, c) read as 0 (the zero columns and rows the
// array-API expression concatenates). Every operation is one of the array-API expression's, in its order,
// rounded once (xg_*, no FMA), so the numbers are the loop's bit for bit: the neighbours' q are recomputed
// where they are read instead of stored, which gives the same values. The primal kernel reads p and writes x,
// the ascent kernel reads x and writes p only at its own pixel: no element is read by one thread and written
// by another within a launch.
//
// Layout: `lines` = planes · rows rows (XRFGPU_GRID_LOOP_Y), each row's columns along the grid's first
// dimension (launch with CudaKernels.grid_rows(cols, lines)). The field ξ is one plane shared by the maps
// (field_plane = 0) or one per map (field_plane = rows · cols); the reweighting factors r are per pixel
// (has_rw = 0: r = 1, no multiplication); the step s and the Huber δ are one value (stride 0) or one per map
// (stride 1), has_huber = 0: no δ term.

// P v = v − γ ξ (ξ · v) at one pixel: s = γ (ξx vx + ξy vy), o = v − s ξ (joint._project's order)
template <typename T> XRFGPU_HD void dtv_project(T vx, T vy, T xix, T xiy, T gamma, T* ox, T* oy) {
    const T s = xg_mul(gamma, xg_add(xg_mul(xix, vx), xg_mul(xiy, vy)));
    *ox = xg_sub(vx, xg_mul(s, xix));
    *oy = xg_sub(vy, xg_mul(s, xiy));
}

// q = r · P p at element i (field element f)
template <typename T>
XRFGPU_HD void dtv_weighted_projection(const T* __restrict__ px, const T* __restrict__ py, const T* __restrict__ xix,
                                       const T* __restrict__ xiy, const T* __restrict__ rw, int has_rw, T gamma,
                                       long long i, long long f, T* qx, T* qy) {
    dtv_project(px[i], py[i], xix[f], xiy[f], gamma, qx, qy);
    if (has_rw) {
        *qx = xg_mul(rw[i], *qx);
        *qy = xg_mul(rw[i], *qy);
    }
}

// the projected dual step u = p + s g, p ← u / max(|u|, 1) (dtv_dual_loop's arithmetic, dtv_dual_step)
template <typename T> XRFGPU_HD void dtv_ascent(T px, T py, T gx, T gy, T s, T* ox, T* oy) {
    const T ux = xg_add(px, xg_mul(s, gx));
    const T uy = xg_add(py, xg_mul(s, gy));
    const T norm = xg_max(xg_sqrt(xg_add(xg_mul(ux, ux), xg_mul(uy, uy))), T(1));
    *ox = xg_div(ux, norm);
    *oy = xg_div(uy, norm);
}

template <typename T>
XRFGPU_LOOP void dtv_dual_loop(T* __restrict__ px, T* __restrict__ py, const T* __restrict__ gx,
                               const T* __restrict__ gy, long long n, const T* __restrict__ step,
                               long long s_size, long long s_plane) {
    XRFGPU_GRID_LOOP(i, n) {
        dtv_ascent(px[i], py[i], gx[i], gy[i], step[bcast_index(i, s_size, s_plane)], &px[i], &py[i]);
    }
}

template <typename T>
XRFGPU_LOOP void dtv_primal_loop(const T* __restrict__ z, const T* __restrict__ lam_w, const T* __restrict__ px,
                                 const T* __restrict__ py, const T* __restrict__ xix, const T* __restrict__ xiy,
                                 long long field_plane, const T* __restrict__ rw, int has_rw, T gamma,
                                 T* __restrict__ x, long long lines, long long rows, long long cols) {
    XRFGPU_GRID_LOOP_Y(line, lines) {
        const long long map = line / rows;  // one division per row, none per element
        const long long r = line - map * rows;
        const long long row0 = line * cols;                      // the row's first element in the stack
        const long long field0 = map * field_plane + r * cols;   // and in the field
        XRFGPU_GRID_LOOP(c, cols) {
            const long long i = row0 + c, f = field0 + c;
            T qx, qy;
            dtv_weighted_projection(px, py, xix, xiy, rw, has_rw, gamma, i, f, &qx, &qy);
            T left = T(0), up = T(0), unused;
            if (c > 0) dtv_weighted_projection(px, py, xix, xiy, rw, has_rw, gamma, i - 1, f - 1, &left, &unused);
            if (r > 0) dtv_weighted_projection(px, py, xix, xiy, rw, has_rw, gamma, i - cols, f - cols, &unused, &up);
            const T dx = xg_sub((c + 1 < cols) ? qx : T(0), left);
            const T dy = xg_sub((r + 1 < rows) ? qy : T(0), up);
            x[i] = xg_add(z[i], xg_mul(lam_w[i], xg_add(dx, dy)));
        }
    }
}

template <typename T>
XRFGPU_LOOP void dtv_dual_ascent_loop(const T* __restrict__ x, T* __restrict__ px, T* __restrict__ py,
                                      const T* __restrict__ xix, const T* __restrict__ xiy, long long field_plane,
                                      const T* __restrict__ rw, int has_rw, const T* __restrict__ huber,
                                      long long huber_stride, int has_huber, const T* __restrict__ step,
                                      long long step_stride, T gamma, long long lines, long long rows,
                                      long long cols) {
    XRFGPU_GRID_LOOP_Y(line, lines) {
        const long long map = line / rows;
        const long long r = line - map * rows;
        const long long row0 = line * cols;
        const long long field0 = map * field_plane + r * cols;
        const T s = step[map * step_stride];
        const T delta = has_huber ? huber[map * huber_stride] : T(0);
        XRFGPU_GRID_LOOP(c, cols) {
            const long long i = row0 + c, f = field0 + c;
            const T here = x[i];
            const T dx = (c + 1 < cols) ? xg_sub(x[i + 1], here) : T(0);
            const T dy = (r + 1 < rows) ? xg_sub(x[i + cols], here) : T(0);
            T gx, gy;
            dtv_project(dx, dy, xix[f], xiy[f], gamma, &gx, &gy);
            if (has_rw) {
                gx = xg_mul(rw[i], gx);
                gy = xg_mul(rw[i], gy);
            }
            const T pxi = px[i], pyi = py[i];
            if (has_huber) {  // the Huber term's dual gradient −δ p
                gx = xg_sub(gx, xg_mul(delta, pxi));
                gy = xg_sub(gy, xg_mul(delta, pyi));
            }
            dtv_ascent(pxi, pyi, gx, gy, s, &px[i], &py[i]);
        }
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_dtv_dual_f32(float* px, float* py, const float* gx, const float* gy, long long n,
                                  const float* step, long long s_size, long long s_plane) {
    xrfgpu::dtv_dual_loop<float>(px, py, gx, gy, n, step, s_size, s_plane);
}
XRFGPU_KERNEL xrfgpu_dtv_dual_f64(double* px, double* py, const double* gx, const double* gy, long long n,
                                  const double* step, long long s_size, long long s_plane) {
    xrfgpu::dtv_dual_loop<double>(px, py, gx, gy, n, step, s_size, s_plane);
}

XRFGPU_KERNEL xrfgpu_dtv_primal_f32(const float* z, const float* lam_w, const float* px, const float* py,
                                    const float* xix, const float* xiy, long long field_plane, const float* rw,
                                    int has_rw, float gamma, float* x, long long lines, long long rows,
                                    long long cols) {
    xrfgpu::dtv_primal_loop<float>(z, lam_w, px, py, xix, xiy, field_plane, rw, has_rw, gamma, x, lines, rows, cols);
}
XRFGPU_KERNEL xrfgpu_dtv_primal_f64(const double* z, const double* lam_w, const double* px, const double* py,
                                    const double* xix, const double* xiy, long long field_plane, const double* rw,
                                    int has_rw, double gamma, double* x, long long lines, long long rows,
                                    long long cols) {
    xrfgpu::dtv_primal_loop<double>(z, lam_w, px, py, xix, xiy, field_plane, rw, has_rw, gamma, x, lines, rows, cols);
}
XRFGPU_KERNEL xrfgpu_dtv_dual_ascent_f32(const float* x, float* px, float* py, const float* xix, const float* xiy,
                                         long long field_plane, const float* rw, int has_rw, const float* huber,
                                         long long huber_stride, int has_huber, const float* step,
                                         long long step_stride, float gamma, long long lines, long long rows,
                                         long long cols) {
    xrfgpu::dtv_dual_ascent_loop<float>(x, px, py, xix, xiy, field_plane, rw, has_rw, huber, huber_stride, has_huber,
                                        step, step_stride, gamma, lines, rows, cols);
}
XRFGPU_KERNEL xrfgpu_dtv_dual_ascent_f64(const double* x, double* px, double* py, const double* xix,
                                         const double* xiy, long long field_plane, const double* rw, int has_rw,
                                         const double* huber, long long huber_stride, int has_huber,
                                         const double* step, long long step_stride, double gamma, long long lines,
                                         long long rows, long long cols) {
    xrfgpu::dtv_dual_ascent_loop<double>(x, px, py, xix, xiy, field_plane, rw, has_rw, huber, huber_stride, has_huber,
                                         step, step_stride, gamma, lines, rows, cols);
}
