// The dTV denoiser's dual iterations for the CPU: the host engine of xrfgpu._elementwise.dtv_denoise_numpy.
//
// Built on demand by the host C++ compiler (xrfgpu/_host_kernels.py, HOST_ENGINE_CXX_FLAGS) and called through
// ctypes, one call per block of maps. Not a CUDA source: the GPU runs kernels/dtv.cu.
//
// What it computes: for each map, n_inner times (primal; dual ascent), then a last primal, where (Chambolle 2004;
// the directional TV of Ehrhardt & Betcke 2016, the projection P v = v − γ ξ (ξ · v))
//
//   primal        x = z + λw · div(r P p)              div as xrfgpu.joint._divergence (zero outside the map)
//   dual ascent   g = r P ∇x (− δ p)                   ∇ as xrfgpu.joint._gradient (zero last difference)
//                 u = p + s g,  p ← u / max(1, |u|)
//
// with r the reweighting (optional), δ the Huber parameter (optional), s the step (one per map). Every
// operation is the one of xrfgpu._elementwise._dtv_denoise_block, with the same operands in the same order,
// each rounded once in T (float or double): the results are that code's bit for bit, the sign of a zero
// included (tests/test_host_kernels.py). Points that this rests on:
//   * ±0 and NaN: the first column's and first row's differences are copies (q, not q − 0); the last ones are
//     0 − q; the ascent's last differences are +0; max(1, NaN) is NaN (as numpy.maximum);
//   * at γ = 0 the NumPy code skips the projection (PROJECT = false here), since v − 0 · ξ (ξ · v) may turn a
//     −0 into +0 and a non-finite ξ into NaN;
//   * multiplication is commutative in IEEE arithmetic (a · b and b · a round to the same number), the only
//     liberty taken with the NumPy code's operand order;
//   * no FMA contraction (-ffp-contract=off, in every clone below), no fast-math.
//
// The shape of the loops is the CPU's, not the GPU's: per row, the projected dual r P p is computed once per
// pixel into a row buffer (the divergence reads it twice), the boundary columns are peeled off and the
// boundary rows are separate instantiations, so the inner loops have no branches and GCC vectorises them
// (with -fno-math-errno for the square root and -fno-trapping-math for the max select). A map's n_inner
// iterations run one after another while its arrays are in cache (the maps are independent).
//
// With GCC on x86-64 Linux the driver is compiled twice (target_clones): an AVX2 clone and the baseline
// x86-64 one; the dynamic loader picks the AVX2 clone on CPUs that have AVX2 (an ifunc resolver reads
// cpuid), the baseline clone elsewhere. Both do the same IEEE operations (the vector square root and
// division are correctly rounded, as the scalar ones), so both give the same bits.
//
// Reference: A. Chambolle, J. Math. Imaging Vis. 20, 89 (2004), doi:10.1023/B:JMIV.0000011325.36760.1e;
// M. J. Ehrhardt and M. M. Betcke, SIAM J. Imaging Sci. 9, 1084 (2016), doi:10.1137/15M1047325.

#include <cmath>
#include <new>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(XRFGPU_HOST_NO_CLONES)
#define XRFGPU_HOST_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define XRFGPU_HOST_CLONES
#endif

#if defined(__GNUC__)
#define XRFGPU_HOST_INLINE inline __attribute__((always_inline))
#else
#define XRFGPU_HOST_INLINE inline
#endif

namespace {

// One map's arrays and parameters (pointers at the map's first pixel).
template <typename T>
struct Map {
    const T* z;       // EM image (rows × cols)
    const T* lw;      // λ w
    T* px;            // dual, x component (updated)
    T* py;            // dual, y component (updated)
    const T* fx;      // ξx (this map's or the shared field)
    const T* fy;      // ξy
    const T* rw;      // reweighting r (read only when RW)
    T* x;             // primal output
    T step;           // s
    T delta;          // Huber δ (read only when HUBER)
    T gamma;          // γ (read only when PROJECT)
    long long rows, cols;
};

// P v = v − γ ξ (ξ · v) in the NumPy code's order: s = (ξx vx + ξy vy) γ; o = v − s ξ.
template <typename T, bool PROJECT>
XRFGPU_HOST_INLINE void project(T vx, T vy, T fx, T fy, T gamma, T& ox, T& oy) {
    if (PROJECT) {
        const T s = ((fx * vx) + (fy * vy)) * gamma;
        ox = vx - s * fx;
        oy = vy - s * fy;
    } else {
        ox = vx;
        oy = vy;
    }
}

// q = r P p of one row (pointers at the row's first pixel) into qx, qy.
template <typename T, bool RW, bool PROJECT>
XRFGPU_HOST_INLINE void projected_dual_row(const T* __restrict__ px, const T* __restrict__ py,
                                           const T* __restrict__ fx, const T* __restrict__ fy,
                                           const T* __restrict__ rw, long long cols, T gamma, T* __restrict__ qx,
                                           T* __restrict__ qy) {
    for (long long c = 0; c < cols; ++c) {
        T ox, oy;
        project<T, PROJECT>(px[c], py[c], fx[c], fy[c], gamma, ox, oy);
        if (RW) {
            ox = rw[c] * ox;
            oy = rw[c] * oy;
        }
        qx[c] = ox;
        qy[c] = oy;
    }
}

// x = z + λw (dx + dy) on one row (pointers at the row's first pixel); ROW: 0 the first row (dy = q_y), 1 an
// inner row (dy = q_y − q_y above), 2 the last row (dy = 0 − q_y above).
template <typename T, int ROW>
XRFGPU_HOST_INLINE void primal_row(const T* __restrict__ z, const T* __restrict__ lw, const T* __restrict__ qx,
                                   const T* __restrict__ qy, const T* __restrict__ qy_above, T* __restrict__ x,
                                   long long cols) {
    const long long last = cols - 1;
    auto dy = [&](long long c) -> T {
        if (ROW == 0) return qy[c];
        if (ROW == 1) return qy[c] - qy_above[c];
        return T(0) - qy_above[c];
    };
    x[0] = z[0] + lw[0] * (qx[0] + dy(0));
    for (long long c = 1; c < last; ++c) x[c] = z[c] + lw[c] * ((qx[c] - qx[c - 1]) + dy(c));
    x[last] = z[last] + lw[last] * ((T(0) - qx[last - 1]) + dy(last));
}

// The primal step on one map; q holds 3 × cols scratch values.
template <typename T, bool RW, bool PROJECT>
XRFGPU_HOST_INLINE void primal(const Map<T>& a, T* q) {
    T* qx = q;
    T* qy = q + a.cols;
    T* qy_above = q + 2 * a.cols;
    for (long long r = 0; r < a.rows; ++r) {
        const long long i0 = r * a.cols;
        projected_dual_row<T, RW, PROJECT>(a.px + i0, a.py + i0, a.fx + i0, a.fy + i0, a.rw + i0, a.cols, a.gamma,
                                           qx, qy);
        if (r == 0)
            primal_row<T, 0>(a.z + i0, a.lw + i0, qx, qy, qy_above, a.x + i0, a.cols);
        else if (r + 1 < a.rows)
            primal_row<T, 1>(a.z + i0, a.lw + i0, qx, qy, qy_above, a.x + i0, a.cols);
        else
            primal_row<T, 2>(a.z + i0, a.lw + i0, qx, qy, qy_above, a.x + i0, a.cols);
        T* t = qy_above;  // this row's q_y is the next row's "above"
        qy_above = qy;
        qy = t;
    }
}

// The dual update of one pixel from its gradient (dx, dy): g = r P ∇x − δ p; u = p + s g; p = u / max(1, |u|).
template <typename T, bool RW, bool HUBER, bool PROJECT>
XRFGPU_HOST_INLINE void dual_update(T dx, T dy, T fx, T fy, T rw, T gamma, T delta, T step, T& px, T& py) {
    T gx, gy;
    project<T, PROJECT>(dx, dy, fx, fy, gamma, gx, gy);
    if (RW) {
        gx = rw * gx;
        gy = rw * gy;
    }
    const T pxi = px, pyi = py;
    if (HUBER) {
        gx = gx - delta * pxi;
        gy = gy - delta * pyi;
    }
    const T ux = pxi + step * gx;
    const T uy = pyi + step * gy;
    const T root = std::sqrt(ux * ux + uy * uy);
    const T norm = (root < T(1)) ? T(1) : root;  // numpy.maximum(root, 1): NaN stays NaN
    px = ux / norm;
    py = uy / norm;
}

// The dual ascent on one row (pointers at the row's first pixel); BELOW: a row below exists (else dy = +0).
template <typename T, bool RW, bool HUBER, bool PROJECT, bool BELOW>
XRFGPU_HOST_INLINE void ascent_row(const T* __restrict__ x, const T* __restrict__ fx, const T* __restrict__ fy,
                                   const T* __restrict__ rw, T* __restrict__ px, T* __restrict__ py, long long cols,
                                   T gamma, T delta, T step) {
    const long long last = cols - 1;
    for (long long c = 0; c < last; ++c) {
        const T dx = x[c + 1] - x[c];
        const T dy = BELOW ? x[c + cols] - x[c] : T(0);
        dual_update<T, RW, HUBER, PROJECT>(dx, dy, fx[c], fy[c], RW ? rw[c] : T(1), gamma, delta, step, px[c],
                                           py[c]);
    }
    const T dy = BELOW ? x[last + cols] - x[last] : T(0);
    dual_update<T, RW, HUBER, PROJECT>(T(0), dy, fx[last], fy[last], RW ? rw[last] : T(1), gamma, delta, step,
                                       px[last], py[last]);
}

template <typename T, bool RW, bool HUBER, bool PROJECT>
XRFGPU_HOST_INLINE void ascent(const Map<T>& a) {
    for (long long r = 0; r < a.rows; ++r) {
        const long long i0 = r * a.cols;
        if (r + 1 < a.rows)
            ascent_row<T, RW, HUBER, PROJECT, true>(a.x + i0, a.fx + i0, a.fy + i0, a.rw + i0, a.px + i0, a.py + i0,
                                                    a.cols, a.gamma, a.delta, a.step);
        else
            ascent_row<T, RW, HUBER, PROJECT, false>(a.x + i0, a.fx + i0, a.fy + i0, a.rw + i0, a.px + i0,
                                                     a.py + i0, a.cols, a.gamma, a.delta, a.step);
    }
}

template <typename T, bool RW, bool HUBER, bool PROJECT>
XRFGPU_HOST_INLINE void iterate(const Map<T>& a, int n_inner, T* q) {
    for (int k = 0; k < n_inner; ++k) {
        primal<T, RW, PROJECT>(a, q);
        ascent<T, RW, HUBER, PROJECT>(a);
    }
    primal<T, RW, PROJECT>(a, q);
}

template <typename T>
XRFGPU_HOST_INLINE void iterate_any(const Map<T>& a, int n_inner, T* q, bool rw, bool huber, bool proj) {
    // the 8 loop variants, chosen once per map
    if (proj) {
        if (rw && huber) iterate<T, true, true, true>(a, n_inner, q);
        else if (rw) iterate<T, true, false, true>(a, n_inner, q);
        else if (huber) iterate<T, false, true, true>(a, n_inner, q);
        else iterate<T, false, false, true>(a, n_inner, q);
    } else {
        if (rw && huber) iterate<T, true, true, false>(a, n_inner, q);
        else if (rw) iterate<T, true, false, false>(a, n_inner, q);
        else if (huber) iterate<T, false, true, false>(a, n_inner, q);
        else iterate<T, false, false, false>(a, n_inner, q);
    }
}

// The per-map driver; compiled once per clone (see the top of the file).
template <typename T>
XRFGPU_HOST_INLINE void run_maps(const T* z, const T* lw, T* px, T* py, const T* fx, const T* fy,
                                 long long field_plane, const T* rw, int has_rw, const T* huber, long long huber_stride,
                                 int has_huber, const T* step, long long step_stride, T gamma, int project_dual,
                                 T* x, long long maps, long long rows, long long cols, int n_inner, T* q) {
    const long long plane = rows * cols;
    for (long long m = 0; m < maps; ++m) {
        Map<T> a;
        a.z = z + m * plane;
        a.lw = lw + m * plane;
        a.px = px + m * plane;
        a.py = py + m * plane;
        a.fx = fx + m * field_plane;
        a.fy = fy + m * field_plane;
        a.rw = has_rw ? rw + m * plane : a.z;
        a.x = x + m * plane;
        a.step = step[m * step_stride];
        a.delta = has_huber ? huber[m * huber_stride] : T(0);
        a.gamma = gamma;
        a.rows = rows;
        a.cols = cols;
        iterate_any<T>(a, n_inner, q, has_rw != 0, has_huber != 0, project_dual != 0);
    }
}

XRFGPU_HOST_CLONES void run_f32(const float* z, const float* lw, float* px, float* py, const float* fx,
                                const float* fy, long long field_plane, const float* rw, int has_rw,
                                const float* huber, long long huber_stride, int has_huber, const float* step,
                                long long step_stride, float gamma, int project_dual, float* x, long long maps,
                                long long rows, long long cols, int n_inner, float* q) {
    run_maps<float>(z, lw, px, py, fx, fy, field_plane, rw, has_rw, huber, huber_stride, has_huber, step,
                    step_stride, gamma, project_dual, x, maps, rows, cols, n_inner, q);
}

XRFGPU_HOST_CLONES void run_f64(const double* z, const double* lw, double* px, double* py, const double* fx,
                                const double* fy, long long field_plane, const double* rw, int has_rw,
                                const double* huber, long long huber_stride, int has_huber, const double* step,
                                long long step_stride, double gamma, int project_dual, double* x, long long maps,
                                long long rows, long long cols, int n_inner, double* q) {
    run_maps<double>(z, lw, px, py, fx, fy, field_plane, rw, has_rw, huber, huber_stride, has_huber, step,
                     step_stride, gamma, project_dual, x, maps, rows, cols, n_inner, q);
}

template <typename T, typename F>
int guarded(long long rows, long long cols, F body) {
    if (rows < 2 || cols < 2) return 2;  // the NumPy code's views need two rows and two columns
    try {
        std::vector<T> q(static_cast<size_t>(3 * cols));
        body(q.data());
    } catch (const std::bad_alloc&) {
        return 1;
    }
    return 0;
}

}  // namespace

// The dTV dual iterations on `maps` consecutive maps of rows × cols pixels (C order, contiguous):
// z, lw, px, py, x, rw: maps × rows × cols; fx, fy: the field, map m's at fx + m · field_plane (field_plane 0:
// one field for every map); step[m · step_stride] and huber[m · huber_stride] (stride 0: one value for all);
// project_dual 0: γ = 0 and the projection skipped (as the NumPy code does). px, py are updated in place, x
// written. Returns 0; 1 if the row scratch could not be allocated, 2 for fewer than two rows or columns
// (nothing is written then).
extern "C" int xrfgpu_host_dtv_f32(const float* z, const float* lw, float* px, float* py, const float* fx,
                                   const float* fy, long long field_plane, const float* rw, int has_rw,
                                   const float* huber, long long huber_stride, int has_huber, const float* step,
                                   long long step_stride, float gamma, int project_dual, float* x, long long maps,
                                   long long rows, long long cols, int n_inner) {
    return guarded<float>(rows, cols, [&](float* q) {
        run_f32(z, lw, px, py, fx, fy, field_plane, rw, has_rw, huber, huber_stride, has_huber, step, step_stride,
                gamma, project_dual, x, maps, rows, cols, n_inner, q);
    });
}

extern "C" int xrfgpu_host_dtv_f64(const double* z, const double* lw, double* px, double* py, const double* fx,
                                   const double* fy, long long field_plane, const double* rw, int has_rw,
                                   const double* huber, long long huber_stride, int has_huber, const double* step,
                                   long long step_stride, double gamma, int project_dual, double* x,
                                   long long maps, long long rows, long long cols, int n_inner) {
    return guarded<double>(rows, cols, [&](double* q) {
        run_f64(z, lw, px, py, fx, fy, field_plane, rw, has_rw, huber, huber_stride, has_huber, step, step_stride,
                gamma, project_dual, x, maps, rows, cols, n_inner, q);
    });
}
