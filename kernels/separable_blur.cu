// separable_blur.cu — the reflect-boundary blur of a separable, axis-symmetric PSF h = u vᵀ in real space,
// one axis at a time, for the GPU Richardson–Lucy iteration (xrfgpu/_gpu_rl.py, the "direct" blur).
//
// A PSF symmetric along both axes gives a symmetric blur operator A (Aᵀ = A) with the half-sample
// reflect boundary, the operator that the DCT engines diagonalise (xrfgpu/fft.py). For a separable one
// A = A_cols ⊗ A_rows, and each factor is a correlation of a line with an odd, symmetric tap vector w of
// length k = 2c + 1 on the reflected line:
//
//     out[i] = Σ_{t=0}^{k−1} w[t] · in[reflect(i + t − c)],  reflect(m) = −m − 1 (m < 0), 2n − 1 − m (m ≥ n),
//
// valid while c ≤ n (one reflection; the caller checks). Every output sums its k products in the order
// t = 0, 1, …, k − 1 with one fused multiply-add each (xg_fma), on the device and on the host alike, so
// the host build of this file (tests/test_kernels_host.py) computes the device's numbers; the reference
// it is compared with is scipy.ndimage.correlate1d(mode="reflect").
//
// Two passes per blur:
//   * xrfgpu_blur_rows: along each row (the contiguous axis), a group of XRFGPU_GROUP outputs per thread
//     (columns blockDim.x apart): per tap one uniform load of the tap and, per output, a coalesced load of
//     the warp's consecutive columns and a fused multiply-add;
//   * xrfgpu_blur_cols: along each column, one column per thread and a strip of XRFGPU_STRIP outputs per
//     thread, the strip's window kept in a shift register: per tap one load of the input, one uniform
//     load of the tap and XRFGPU_STRIP fused multiply-adds (a thread per output would load k inputs per
//     output). Its epilogue is one of the RL steps, fused: mode 0 stores the blur, mode 1 the ratio
//     y / max(blur + b, eps) (rl_ratio), mode 2 the update x · blur over x (rl_update);
//   * xrfgpu_blur_cols_tile: the same column sums and epilogues from a tile in shared memory: a block takes
//     XRFGPU_COL_WIDTH (32) consecutive columns × an output band of XRFGPU_COL_WARPS · S rows, loads the band
//     and its 2c halo rows once, coalesced (a warp per 128-byte row segment), reflected at load, and each
//     warp computes S consecutive rows of its 32 columns (a lane per column) from a register window over
//     its lane's column of the tile, S taps at a time (no register shifts); the stores are coalesced rows.
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif
// outputs per thread of the column pass (a compile-time constant: the shift register lives in registers)
#ifndef XRFGPU_STRIP
#define XRFGPU_STRIP 16
#endif
// outputs per lane of the warp row pass (odd: the lanes' windows, XRFGPU_ROW_STRIP words apart in shared
// memory, then fall in 32 different banks) and the widest PSF it takes (taps ≤ 2·XRFGPU_ROW_MAX_HALF + 1)
#ifndef XRFGPU_ROW_STRIP
#define XRFGPU_ROW_STRIP 17
#endif
#ifndef XRFGPU_ROW_MAX_HALF
#define XRFGPU_ROW_MAX_HALF 64
#endif
#define XRFGPU_ROW_SEGMENT (32 * XRFGPU_ROW_STRIP)
#if defined(XRFGPU_CUDA)
#define XRFGPU_EACH_LANE_SLOTS XRFGPU_ROW_STRIP
#define XRFGPU_SLOT(lane, q) (q)
#else
#define XRFGPU_EACH_LANE_SLOTS XRFGPU_ROW_SEGMENT
#define XRFGPU_SLOT(lane, q) ((lane) * XRFGPU_ROW_STRIP + (q))
#endif
#define XRFGPU_ROW_BUFFER (XRFGPU_ROW_SEGMENT + 2 * XRFGPU_ROW_MAX_HALF)
// the tiled column pass: warps per block (blocks of 32 · XRFGPU_COL_WARPS = 256 threads, CudaKernels.BLOCK),
// columns per tile (a warp's lanes), and output rows per warp (the register window's height S) for float
// and for double (a double takes two registers: half the rows keeps the window in the same registers)
#ifndef XRFGPU_COL_WARPS
#define XRFGPU_COL_WARPS 8
#endif
#define XRFGPU_COL_WIDTH 32
#ifndef XRFGPU_COL_STRIP_F32
#define XRFGPU_COL_STRIP_F32 8
#endif
#ifndef XRFGPU_COL_STRIP_F64
#define XRFGPU_COL_STRIP_F64 8
#endif
// global loads in flight per thread while the tiled column pass fills its tile
#ifndef XRFGPU_COL_LOADS
#define XRFGPU_COL_LOADS 8
#endif
// resident blocks of 256 threads per SM that the tiled column pass's registers must allow (≤ 65536 / (256 ·
// this) each), by dtype. float: 4 (64 registers; 32 warps per SM) with a window of 8 rows, which ran the
// ratio pass 1.18–1.22× faster than 16 rows at 3 blocks on an H200 (2048²–8192², 61 taps, 2026-11-27,
// benchmarks/gpu_iteration_parts.py) and does not spill on sm_80 or sm_90 (nvcc 13). double: 3 (80
// registers); at 4 ptxas spills double's window of 8 rows on sm_80
#ifndef XRFGPU_COL_MIN_BLOCKS_F32
#define XRFGPU_COL_MIN_BLOCKS_F32 4
#endif
#ifndef XRFGPU_COL_MIN_BLOCKS_F64
#define XRFGPU_COL_MIN_BLOCKS_F64 3
#endif
#if defined(XRFGPU_CUDA)
#define XRFGPU_UNROLL _Pragma("unroll")
// Warp-level work for the warp row pass: each warp of the grid takes work items in turn (item loop),
// its lanes share one buffer in shared memory (blocks of 256 threads: 8 warps, 8 buffers), fill it with
// a lane-strided loop, and each lane then computes its own outputs (lane loop: one pass, the lane's own).
#define XRFGPU_WARP_ITEMS(item, n)                                                                  \
    for (long long item = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; item < (n); \
         item += ((long long)gridDim.x * blockDim.x) >> 5)
#define XRFGPU_LANE_STRIDED(m, n) for (long long m = (threadIdx.x & 31); m < (n); m += 32)
#define XRFGPU_EACH_LANE(lane) for (int lane = (int)(threadIdx.x & 31), once_ = 1; once_; once_ = 0)
#define XRFGPU_SYNC_WARP() __syncwarp()
#define XRFGPU_WARP_BUFFER(T, name) \
    __shared__ T name##_of_block[8][XRFGPU_ROW_BUFFER]; \
    T* name = name##_of_block[threadIdx.x >> 5]
// Block-level work for the tiled column pass: tiles of columns along the grid's first dimension (a block
// per tile, grid-strided), the block's threads fill the tile together (block-strided loop), then each
// thread, warp `warp` and lane `lane` of the block, computes its own outputs. The tile lives in the
// launch's dynamic shared memory (sized by the caller for the PSF: CudaKernels.col_tile_bytes).
#define XRFGPU_TILE_LOOP_X(tile, n) for (long long tile = blockIdx.x; tile < (n); tile += gridDim.x)
#define XRFGPU_BLOCK_STRIDED(m, n) for (int m = (int)threadIdx.x; m < (n); m += (int)blockDim.x)
#define XRFGPU_EACH_BLOCK_THREAD(warp, lane) \
    for (int warp = (int)(threadIdx.x >> 5), lane = (int)(threadIdx.x & 31), once_ = 1; once_; once_ = 0)
#define XRFGPU_SYNC_BLOCK() __syncthreads()
#define XRFGPU_TILE_BUFFER(T, name, count)                      \
    extern __shared__ __align__(16) unsigned char name##_bytes[]; \
    T* name = reinterpret_cast<T*>(name##_bytes)
#define XRFGPU_COL_BOUNDS_F32 __launch_bounds__(32 * XRFGPU_COL_WARPS, XRFGPU_COL_MIN_BLOCKS_F32)
#define XRFGPU_COL_BOUNDS_F64 __launch_bounds__(32 * XRFGPU_COL_WARPS, XRFGPU_COL_MIN_BLOCKS_F64)
#else
#define XRFGPU_UNROLL
// the host build: one "warp" walks every item, its 32 lanes one after the other
#define XRFGPU_WARP_ITEMS(item, n) for (long long item = 0; item < (n); ++item)
#define XRFGPU_LANE_STRIDED(m, n) for (long long m = 0; m < (n); ++m)
#define XRFGPU_EACH_LANE(lane) for (int lane = 0; lane < 32; ++lane)
#define XRFGPU_SYNC_WARP() ((void)0)
#define XRFGPU_WARP_BUFFER(T, name) \
    T name##_local[XRFGPU_ROW_BUFFER]; \
    T* name = name##_local
// the host build: one "block" walks every tile, its threads one after the other
#define XRFGPU_TILE_LOOP_X(tile, n) for (long long tile = 0; tile < (n); ++tile)
#define XRFGPU_BLOCK_STRIDED(m, n) for (int m = 0; m < (n); ++m)
#define XRFGPU_EACH_BLOCK_THREAD(warp, lane) \
    for (int warp = 0; warp < XRFGPU_COL_WARPS; ++warp) for (int lane = 0; lane < 32; ++lane)
#define XRFGPU_SYNC_BLOCK() ((void)0)
#define XRFGPU_TILE_BUFFER(T, name, count) \
    std::vector<T> name##_host((size_t)(count)); \
    T* name = name##_host.data()
#define XRFGPU_COL_BOUNDS_F32
#define XRFGPU_COL_BOUNDS_F64
#endif
#if !defined(XRFGPU_CUDA)
#include <vector>
#endif

namespace xrfgpu {

// index of sample m of a length-n line extended by half-sample reflection (|m| within one reflection)
XRFGPU_HD long long reflect_once(long long m, long long n) { return (m < 0) ? -m - 1 : ((m >= n) ? 2 * n - 1 - m : m); }

// Σ_t w[t] · line(i + t − c) for one output of the row pass; `row` is the map's row, n its length
template <typename T>
XRFGPU_HD T correlate_row_at(const T* __restrict__ row, long long n, long long i, const T* __restrict__ w,
                             long long k, long long c) {
    T acc = T(0);
    const long long first = i - c;
    if (first >= 0 && first + k <= n) {  // interior: no reflection
        const T* in = row + first;
        for (long long t = 0; t < k; ++t) acc = xg_fma(w[t], in[t], acc);
    } else {
        for (long long t = 0; t < k; ++t) acc = xg_fma(w[t], row[reflect_once(first + t, n)], acc);
    }
    return acc;
}

// The row pass for one column group (XRFGPU_COLUMN_LOOP: columns j0 + u·blockDim.x, u < G): each tap is
// loaded once for the group, and each of its G products is a coalesced load of the warp's columns.
template <typename T>
XRFGPU_LOOP void blur_rows_loop(const T* __restrict__ src, T* __restrict__ dst, const T* __restrict__ w,
                                long long k, long long lines, long long cols) {
    const long long c = k / 2;
    XRFGPU_GRID_LOOP_Y(line, lines) {
        const T* row = src + line * cols;
        T* out = dst + line * cols;
        XRFGPU_COLUMN_LOOP(j0, cols, XRFGPU_GROUP) {
            const long long last = XRFGPU_COLUMN(j0, XRFGPU_GROUP - 1);
            if (j0 - c >= 0 && last + c < cols) {  // the whole group is interior: no reflection
                T acc[XRFGPU_GROUP];
                XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) acc[u] = T(0);
                const T* in = row + j0 - c;
                for (long long t = 0; t < k; ++t) {
                    const T wt = w[t];
                    XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) acc[u] = xg_fma(wt, in[XRFGPU_COLUMN(t, u)], acc[u]);
                }
                XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) out[XRFGPU_COLUMN(j0, u)] = acc[u];
            } else {
                XRFGPU_GROUP_FOR(u, XRFGPU_GROUP) {
                    const long long j = XRFGPU_COLUMN(j0, u);
                    if (j < cols) out[j] = correlate_row_at(row, cols, j, w, k, c);
                }
            }
        }
    }
}

// The column pass over a strip of XRFGPU_STRIP rows [i0, i0 + S) of one column of one map. For tap t the
// register window holds win[q] = in[reflect(i0 + q + t − c)], q < S: out[i0 + q] += w[t] · win[q], then the
// window moves down one row (a register shift, unrolled) and its last slot loads the next input row.
template <typename T>
XRFGPU_HD void correlate_column_strip(const T* __restrict__ column, long long cols, long long n, long long i0,
                                      const T* __restrict__ w, long long k, long long c, T* acc) {
    T win[XRFGPU_STRIP];
    XRFGPU_UNROLL for (int q = 0; q < XRFGPU_STRIP; ++q) {
        acc[q] = T(0);
        const long long m = i0 + q - c;  // ≥ −c ≥ −n; past 2n − 1 only in slots past the map (n < S)
        win[q] = (m < 2 * n) ? column[reflect_once(m, n) * cols] : T(0);
    }
    for (long long t = 0; t < k; ++t) {
        const T wt = w[t];
        XRFGPU_UNROLL for (int q = 0; q < XRFGPU_STRIP; ++q) acc[q] = xg_fma(wt, win[q], acc[q]);
        if (t + 1 < k) {
            XRFGPU_UNROLL for (int q = 0; q + 1 < XRFGPU_STRIP; ++q) win[q] = win[q + 1];
            // row i0 + S + t − c of the reflected column; rows past 2n − 1 only feed strip slots past the map
            const long long m = i0 + XRFGPU_STRIP + t - c;
            win[XRFGPU_STRIP - 1] = (m < 2 * n) ? column[reflect_once(m, n) * cols] : T(0);
        }
    }
}

// The warp row pass: a warp takes one segment of XRFGPU_ROW_SEGMENT outputs of one row, loads the
// segment's inputs (reflected at the row's ends) into its shared buffer with coalesced loads, and each lane
// computes XRFGPU_ROW_STRIP consecutive outputs with a window in registers, as the column pass does (per
// tap: one conflict-free shared load, one tap load, XRFGPU_ROW_STRIP fused multiply-adds); the results go
// back through the buffer so that the stores are coalesced too. The same sums as xrfgpu_blur_rows, bit for
// bit. Taps: k ≤ 2·XRFGPU_ROW_MAX_HALF + 1 (the caller checks).
template <typename T>
XRFGPU_LOOP void blur_rows_warp_loop(const T* __restrict__ src, T* __restrict__ dst, const T* __restrict__ w,
                                     long long k, long long lines, long long cols) {
    const long long c = k / 2;
    const long long segments = (cols + XRFGPU_ROW_SEGMENT - 1) / XRFGPU_ROW_SEGMENT;
    XRFGPU_WARP_BUFFER(T, buffer);
    XRFGPU_WARP_ITEMS(item, lines * segments) {
        const long long line = item / segments;
        const long long start = (item - line * segments) * XRFGPU_ROW_SEGMENT;
        const T* row = src + line * cols;
        T* out = dst + line * cols;
        const long long span = XRFGPU_ROW_SEGMENT + k - 1;  // inputs start − c … start + SEGMENT − 1 + c
        XRFGPU_LANE_STRIDED(m, span) {
            const long long at = start - c + m;  // ≥ −c ≥ −n; past 2n − 1 only for outputs past the row
            buffer[m] = (at < 2 * cols) ? row[reflect_once(at, cols)] : T(0);
        }
        XRFGPU_SYNC_WARP();
        T acc[XRFGPU_EACH_LANE_SLOTS];
        XRFGPU_EACH_LANE(lane) {
            const T* in = buffer + (long long)lane * XRFGPU_ROW_STRIP;
            T win[XRFGPU_ROW_STRIP];
            XRFGPU_UNROLL for (int q = 0; q < XRFGPU_ROW_STRIP; ++q) {
                acc[XRFGPU_SLOT(lane, q)] = T(0);
                win[q] = in[q];
            }
            for (long long t = 0; t < k; ++t) {
                const T wt = w[t];
                XRFGPU_UNROLL for (int q = 0; q < XRFGPU_ROW_STRIP; ++q) {
                    acc[XRFGPU_SLOT(lane, q)] = xg_fma(wt, win[q], acc[XRFGPU_SLOT(lane, q)]);
                }
                if (t + 1 < k) {
                    XRFGPU_UNROLL for (int q = 0; q + 1 < XRFGPU_ROW_STRIP; ++q) win[q] = win[q + 1];
                    win[XRFGPU_ROW_STRIP - 1] = in[XRFGPU_ROW_STRIP + t];
                }
            }
        }
        XRFGPU_SYNC_WARP();  // every lane has read the inputs: the buffer now takes the outputs
        XRFGPU_EACH_LANE(lane) {
            XRFGPU_UNROLL for (int q = 0; q < XRFGPU_ROW_STRIP; ++q) {
                buffer[(long long)lane * XRFGPU_ROW_STRIP + q] = acc[XRFGPU_SLOT(lane, q)];
            }
        }
        XRFGPU_SYNC_WARP();
        XRFGPU_LANE_STRIDED(m, XRFGPU_ROW_SEGMENT) {
            if (start + m < cols) out[start + m] = buffer[m];
        }
        XRFGPU_SYNC_WARP();  // the stores have read the buffer before the next item fills it
    }
}

// The column passes' epilogue for the output at flat index `at` whose blur is `blur`: mode 0 stores the
// blur, mode 1 the RL ratio y / max(blur + b, eps) (rl_ratio), mode 2 the update x · blur over x (rl_update)
template <typename T>
XRFGPU_HD void store_column_output(T* __restrict__ dst, long long at, T blur, int mode, const T* __restrict__ data,
                                   const T* __restrict__ background, long long b_size, long long b_plane,
                                   const T* __restrict__ eps, long long e_size, long long e_plane) {
    if (mode == 0) {
        dst[at] = blur;
    } else if (mode == 1) {
        dst[at] = rl_ratio(data[at], blur, background[bcast_index(at, b_size, b_plane)],
                           eps[bcast_index(at, e_size, e_plane)]);
    } else {
        dst[at] = rl_update(dst[at], blur);
    }
}

template <typename T>
XRFGPU_LOOP void blur_cols_loop(const T* __restrict__ src, T* __restrict__ dst, const T* __restrict__ w, long long k,
                                long long planes, long long rows, long long cols, int mode,
                                const T* __restrict__ data, const T* __restrict__ background, long long b_size,
                                long long b_plane, const T* __restrict__ eps, long long e_size, long long e_plane) {
    const long long c = k / 2;
    const long long strips = (rows + XRFGPU_STRIP - 1) / XRFGPU_STRIP;
    const long long plane = rows * cols;
    // strips (map p, first row i0) along the grid's second dimension, one column per thread along the first
    XRFGPU_GRID_LOOP_Y(s, planes * strips) {
        const long long p = s / strips;
        const long long i0 = (s - p * strips) * XRFGPU_STRIP;
        const T* in = src + p * plane;
        XRFGPU_GRID_LOOP(j, cols) {
            T acc[XRFGPU_STRIP];
            correlate_column_strip(in + j, cols, rows, i0, w, k, c, acc);
            XRFGPU_UNROLL for (int q = 0; q < XRFGPU_STRIP; ++q) {
                const long long i = i0 + q;
                if (i < rows) {
                    store_column_output(dst, p * plane + i * cols + j, acc[q], mode, data, background, b_size,
                                        b_plane, eps, e_size, e_plane);
                }
            }
        }
    }
}

// Rows of output per warp (S) and per tile (XRFGPU_COL_WARPS · S) of the tiled column pass, by dtype.
template <typename T>
struct ColumnTile {
    static constexpr int strip = (sizeof(T) == 4) ? XRFGPU_COL_STRIP_F32 : XRFGPU_COL_STRIP_F64;
    static constexpr int rows = XRFGPU_COL_WARPS * strip;
};

// The tiled column pass. A tile is the output band rows [i0, i0 + R) × columns [j0, j0 + 32) of map p
// (R = ColumnTile<T>::rows); its shared buffer holds the input rows i0 − c … i0 + R − 1 + c of those
// columns (R + k − 1 rows of 32 values: row r of the buffer is input row i0 − c + r, reflected at load;
// rows past 2n − 1, and columns past the map, are 0 and only ever feed outputs past the map), then the
// k taps. Warp `warp` computes the outputs i0 + warp · S + q, q < S, of its lane's column: for tap t the
// output q needs buffer row warp · S + q + t (row q + t of the warp's window). The window is S registers
// used as a ring: slot s holds the window's row ≡ s (mod S), so within a block of S taps t0 … t0 + S − 1
// tap t0 + r reads slot (q + r) mod S for output q (fixed at compile time once the loops over q and r are
// unrolled: no register moves), and after it the slot of row t0 + r, which no output needs any more,
// loads row t0 + r + S: per tap one shared load, one tap load (a broadcast) and S fused multiply-adds.
// Each output adds its k products in the order t = 0 … k − 1 with one fused multiply-add each, starting
// from 0, on the same input values: the sums of xrfgpu_blur_cols, bit for bit; the epilogue is the same
// function. Conditions (the caller checks): blocks of 32 · XRFGPU_COL_WARPS threads, dynamic shared memory
// of (R + k − 1) · 32 + k values (CudaKernels.col_tile_bytes), c ≤ n; src and dst do not overlap.
template <typename T>
XRFGPU_LOOP void blur_cols_tile_loop(const T* __restrict__ src, T* __restrict__ dst, const T* __restrict__ w,
                                     long long k, long long planes, long long rows, long long cols, int mode,
                                     const T* __restrict__ data, const T* __restrict__ background, long long b_size,
                                     long long b_plane, const T* __restrict__ eps, long long e_size,
                                     long long e_plane) {
    constexpr int S = ColumnTile<T>::strip;
    constexpr int R = ColumnTile<T>::rows;
    constexpr int W = XRFGPU_COL_WIDTH;
    const int taps = (int)k;
    const long long c = k / 2;
    const int span = R + taps - 1;  // buffer rows
    const long long bands = (rows + R - 1) / R;
    const long long tiles = (cols + W - 1) / W;
    const long long plane = rows * cols;
    XRFGPU_TILE_BUFFER(T, buffer, (long long)span * W + taps);
    T* tap = buffer + span * W;
    XRFGPU_BLOCK_STRIDED(t, taps) tap[t] = w[t];
    // bands (map p, first row i0) along the grid's second dimension, tiles of 32 columns along the first
    XRFGPU_GRID_LOOP_Y(band, planes * bands) {
        const long long p = band / bands;
        const long long i0 = (band - p * bands) * R;
        const T* in = src + p * plane;
        XRFGPU_TILE_LOOP_X(tile, tiles) {
            const long long j0 = tile * W;
            XRFGPU_SYNC_BLOCK();  // the taps are in; the previous tile's windows have read the buffer
            // warp `warp` loads buffer rows warp, warp + XRFGPU_COL_WARPS, …, a 32-column row segment per load,
            // XRFGPU_COL_LOADS of them in flight per thread before they are stored
            XRFGPU_EACH_BLOCK_THREAD(warp, lane) {
                const long long j = j0 + lane;
                for (int r0 = warp; r0 < span; r0 += XRFGPU_COL_LOADS * XRFGPU_COL_WARPS) {
                    T value[XRFGPU_COL_LOADS];
                    XRFGPU_UNROLL for (int g = 0; g < XRFGPU_COL_LOADS; ++g) {
                        const int r = r0 + g * XRFGPU_COL_WARPS;
                        const long long at = i0 - c + r;  // ≥ −c ≥ −n
                        value[g] = (r < span && j < cols && at < 2 * rows) ? in[reflect_once(at, rows) * cols + j]
                                                                            : T(0);
                    }
                    XRFGPU_UNROLL for (int g = 0; g < XRFGPU_COL_LOADS; ++g) {
                        const int r = r0 + g * XRFGPU_COL_WARPS;
                        if (r < span) buffer[r * W + lane] = value[g];
                    }
                }
            }
            XRFGPU_SYNC_BLOCK();
            XRFGPU_EACH_BLOCK_THREAD(warp, lane) {
                const T* column = buffer + warp * S * W + lane;  // buffer row warp · S + s at column[s · W]
                T acc[S];
                T win[S];  // win[s]: the window's row ≡ s (mod S)
                XRFGPU_UNROLL for (int q = 0; q < S; ++q) {
                    acc[q] = T(0);
                    win[q] = column[q * W];
                }
                for (int t0 = 0; t0 < taps; t0 += S) {
                    if (t0 + S <= taps) {  // a whole block of S taps
                        XRFGPU_UNROLL for (int r = 0; r < S; ++r) {
                            const T wt = tap[t0 + r];
                            XRFGPU_UNROLL for (int q = 0; q < S; ++q) {
                                acc[q] = xg_fma(wt, win[(q + r) % S], acc[q]);
                            }
                            // row t0 + r is spent (output 0 was its last): its slot takes row t0 + r + S, which
                            // the taps need up to row S + k − 2
                            win[r] = (t0 + r + 1 < taps) ? column[(t0 + r + S) * W] : T(0);
                        }
                    } else {  // the last k mod S taps
                        XRFGPU_UNROLL for (int r = 0; r < S; ++r) {
                            if (t0 + r < taps) {
                                const T wt = tap[t0 + r];
                                XRFGPU_UNROLL for (int q = 0; q < S; ++q) {
                                    acc[q] = xg_fma(wt, win[(q + r) % S], acc[q]);
                                }
                                win[r] = (t0 + r + 1 < taps) ? column[(t0 + r + S) * W] : T(0);
                            }
                        }
                    }
                }
                const long long j = j0 + lane;
                if (j < cols) {
                    XRFGPU_UNROLL for (int q = 0; q < S; ++q) {
                        const long long i = i0 + warp * S + q;
                        if (i < rows) {
                            store_column_output(dst, p * plane + i * cols + j, acc[q], mode, data, background,
                                                b_size, b_plane, eps, e_size, e_plane);
                        }
                    }
                }
            }
        }
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_blur_rows_f32(const float* src, float* dst, const float* w, long long k, long long lines,
                                   long long cols) {
    xrfgpu::blur_rows_loop<float>(src, dst, w, k, lines, cols);
}
XRFGPU_KERNEL xrfgpu_blur_rows_f64(const double* src, double* dst, const double* w, long long k, long long lines,
                                   long long cols) {
    xrfgpu::blur_rows_loop<double>(src, dst, w, k, lines, cols);
}

XRFGPU_KERNEL xrfgpu_blur_rows_warp_f32(const float* src, float* dst, const float* w, long long k, long long lines,
                                        long long cols) {
    xrfgpu::blur_rows_warp_loop<float>(src, dst, w, k, lines, cols);
}
XRFGPU_KERNEL xrfgpu_blur_rows_warp_f64(const double* src, double* dst, const double* w, long long k,
                                        long long lines, long long cols) {
    xrfgpu::blur_rows_warp_loop<double>(src, dst, w, k, lines, cols);
}

XRFGPU_KERNEL xrfgpu_blur_cols_f32(const float* src, float* dst, const float* w, long long k, long long planes,
                                   long long rows, long long cols, int mode, const float* data,
                                   const float* background, long long b_size, long long b_plane, const float* eps,
                                   long long e_size, long long e_plane) {
    xrfgpu::blur_cols_loop<float>(src, dst, w, k, planes, rows, cols, mode, data, background, b_size, b_plane, eps,
                                  e_size, e_plane);
}
XRFGPU_KERNEL xrfgpu_blur_cols_f64(const double* src, double* dst, const double* w, long long k, long long planes,
                                   long long rows, long long cols, int mode, const double* data,
                                   const double* background, long long b_size, long long b_plane,
                                   const double* eps, long long e_size, long long e_plane) {
    xrfgpu::blur_cols_loop<double>(src, dst, w, k, planes, rows, cols, mode, data, background, b_size, b_plane, eps,
                                   e_size, e_plane);
}

XRFGPU_KERNEL XRFGPU_COL_BOUNDS_F32 xrfgpu_blur_cols_tile_f32(const float* src, float* dst, const float* w, long long k,
                                                        long long planes, long long rows, long long cols, int mode,
                                                        const float* data, const float* background,
                                                        long long b_size, long long b_plane, const float* eps,
                                                        long long e_size, long long e_plane) {
    xrfgpu::blur_cols_tile_loop<float>(src, dst, w, k, planes, rows, cols, mode, data, background, b_size, b_plane,
                                       eps, e_size, e_plane);
}
XRFGPU_KERNEL XRFGPU_COL_BOUNDS_F64 xrfgpu_blur_cols_tile_f64(const double* src, double* dst, const double* w,
                                                        long long k, long long planes, long long rows,
                                                        long long cols, int mode, const double* data,
                                                        const double* background, long long b_size,
                                                        long long b_plane, const double* eps, long long e_size,
                                                        long long e_plane) {
    xrfgpu::blur_cols_tile_loop<double>(src, dst, w, k, planes, rows, cols, mode, data, background, b_size,
                                        b_plane, eps, e_size, e_plane);
}
