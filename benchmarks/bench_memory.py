"""Peak memory of Richardson–Lucy against the map size (each size in a fresh subprocess).

Two measures: the tracemalloc peak (every NumPy allocation) and the growth of
the peak resident set (``VmHWM`` on Linux, which also sees the FFT library's own
buffers; ``ru_maxrss`` elsewhere, which may carry the parent's peak). Target: RL on a 4096² float32 map peaks at ≤ 10× the map's bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SIGMA, observed

SCRIPT = r"""
import json, resource, sys, tracemalloc
import numpy as np
sys.path.insert(0, {bench!r})
from conftest import BACKGROUND
import xrfgpu
# the map comes from a file: building the phantom scene here would set the resident high-water mark
counts = np.load({counts!r})
psf = xrfgpu.psf.gaussian((61, 61), {sigma!r})
def peak_rss():
    # VmHWM belongs to this process image; ru_maxrss keeps the forking parent's high-water mark across exec
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base_rss = peak_rss()
xrfgpu.richardson_lucy(counts[:64, :64], psf[27:34, 27:34], num_iter=1)  # import/plan warm-up
tracemalloc.start()
out = xrfgpu.richardson_lucy(counts, psf, num_iter=3, background=BACKGROUND)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss = peak_rss()
print(json.dumps({{"map_bytes": counts.nbytes, "tracemalloc_peak": peak, "rss_growth": rss - base_rss}}))
"""


@pytest.mark.parametrize("size", [2048, 4096], ids=lambda s: f"size={s}-dtype=float32")
def test_rl_peak_memory(benchmark, size, tmp_path):
    benchmark.group = "rl-memory"
    counts, _, _ = observed(size)
    path = tmp_path / f"counts-{size}.npy"
    np.save(path, counts)
    code = SCRIPT.format(bench=str(Path(__file__).parent), counts=str(path), sigma=SIGMA)

    def measure():
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    result = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(
        role="memory",
        tracemalloc_peak_over_map=result["tracemalloc_peak"] / result["map_bytes"],
        rss_growth_over_map=result["rss_growth"] / result["map_bytes"],
        map_MiB=result["map_bytes"] / 2**20,
    )
