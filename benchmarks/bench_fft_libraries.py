"""The CPU FFT library: ducc0 against scipy.fft, side by side, on the transforms RL needs.

One case = one real-FFT pair (``rfft2`` + ``irfft2``) of a float32 canvas,
or one DCT-II pair of a map, through :mod:`xrfgpu._backend` with the library
switched; ducc0 writes into reused buffers, as the extended engine does.
Sizes: power-of-two maps (512², 1024², 2048²; their DCTs are what the DCT
engine pays) and the extended engine's canvases for those maps with a
61 × 61 PSF (``fft_size(n + 60)``: 576², 1120², 2160²).
"""

from __future__ import annotations

import numpy as np
import pytest

import xrfgpu._backend as backend

SIZES = [512, 576, 1024, 1120, 2048, 2160]


def rounds(size):
    return 20 if size <= 1200 else 6


@pytest.mark.parametrize("library", ["ducc0", "scipy"])
@pytest.mark.parametrize("size", SIZES)
def test_rfft_pair(benchmark, monkeypatch, library, size):
    monkeypatch.setattr(backend, "_LIBRARY", library)
    benchmark.group = f"fft-pair-{size}"
    x = np.random.default_rng(0).random((size, size), dtype=np.float32)
    spectrum = backend.rfft2(x, xp=np)
    out = np.empty_like(x)
    reuse = library == "ducc0"

    def pair():
        s = backend.rfft2(x, xp=np, out=spectrum if reuse else None)
        return backend.irfft2(s, (size, size), xp=np, out=out if reuse else None, overwrite=True)

    benchmark.extra_info.update(role=library, compare_to="scipy" if library == "ducc0" else None)
    benchmark.pedantic(pair, rounds=rounds(size), iterations=1, warmup_rounds=2)


@pytest.mark.parametrize("library", ["ducc0", "scipy"])
@pytest.mark.parametrize("size", [512, 1024, 2048])
def test_dct_pair(benchmark, monkeypatch, library, size):
    monkeypatch.setattr(backend, "_LIBRARY", library)
    benchmark.group = f"dct-pair-{size}"
    x = np.random.default_rng(0).random((size, size), dtype=np.float32)
    benchmark.extra_info.update(role=library, compare_to="scipy" if library == "ducc0" else None)
    benchmark.pedantic(lambda: backend.idct2(backend.dct2(x, xp=np), xp=np), rounds=rounds(size), iterations=1,
                       warmup_rounds=2)
