// spectrum.cu — spectrum · transfer function, in place (xrfgpu::complex_mul).
//
// Complex arrays are passed as interleaved (re, im) pairs of T. The transfer
// function has `transfer_size` complex entries and repeats along leading
// axes (one OTF shared by a stack of spectra: transfer_size = rows·cols/2+1
// per plane; one OTF per map: transfer_size = n).
#ifndef XRFGPU_OPS_CUH
#include "xrfgpu_ops.cuh"
#endif

namespace xrfgpu {

template <typename T>
XRFGPU_LOOP void multiply_spectrum_loop(T* __restrict__ spectrum, const T* __restrict__ transfer, long long n,
                                        long long transfer_size) {
    XRFGPU_GRID_LOOP(i, n) {
        const long long k = bcast_index(i, transfer_size, 1);
        T re, im;
        complex_mul(spectrum[2 * i], spectrum[2 * i + 1], transfer[2 * k], transfer[2 * k + 1], &re, &im);
        spectrum[2 * i] = re;
        spectrum[2 * i + 1] = im;
    }
}

}  // namespace xrfgpu

XRFGPU_KERNEL xrfgpu_multiply_spectrum_f32(float* spectrum, const float* transfer, long long n,
                                           long long transfer_size) {
    xrfgpu::multiply_spectrum_loop<float>(spectrum, transfer, n, transfer_size);
}
XRFGPU_KERNEL xrfgpu_multiply_spectrum_f64(double* spectrum, const double* transfer, long long n,
                                           long long transfer_size) {
    xrfgpu::multiply_spectrum_loop<double>(spectrum, transfer, n, transfer_size);
}
