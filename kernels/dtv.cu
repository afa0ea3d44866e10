// dtv.cu — the projected dual step of the directional-TV denoiser of joint restoration
// (xrfgpu/_elementwise.py, dtv_dual_step, used by xrfgpu/joint.py; Chambolle 2004), both components in one pass.
//
//   u = p + s·g   (per component; s one value, or one per map of a stack)
//   p ← u / max(|u|, 1)
//
// The arithmetic is the array-API expression's, operation by operation (no FMA):
// ux = px + s·gx, uy = py + s·gy, n = max(sqrt(ux·ux + uy·uy), 1), px = ux / n, py = uy / n.
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

template <typename T>
XRFGPU_LOOP void dtv_dual_loop(T* __restrict__ px, T* __restrict__ py, const T* __restrict__ gx,
                               const T* __restrict__ gy, long long n, const T* __restrict__ step,
                               long long s_size, long long s_plane) {
    XRFGPU_GRID_LOOP(i, n) {
        const T s = step[bcast_index(i, s_size, s_plane)];
        const T ux = xg_add(px[i], xg_mul(s, gx[i]));
        const T uy = xg_add(py[i], xg_mul(s, gy[i]));
        const T norm = xg_max(xg_sqrt(xg_add(xg_mul(ux, ux), xg_mul(uy, uy))), T(1));
        px[i] = xg_div(ux, norm);
        py[i] = xg_div(uy, norm);
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
