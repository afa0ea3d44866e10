"""Peak memory of Richardson–Lucy against the map size (each size in a fresh subprocess).

Two measures: the tracemalloc peak (every NumPy allocation) and the growth of
the peak resident set (``ru_maxrss``, which also sees the FFT library's own
buffers). Target: RL on a 4096² float32 map peaks at ≤ 10× the map's bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import json, resource, sys, tracemalloc
import numpy as np
sys.path.insert(0, {bench!r})
from conftest import observed, BACKGROUND
import xrfgpu
counts, truth, psf = observed({size})
del truth
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
xrfgpu.richardson_lucy(counts[:64, :64], psf[27:34, 27:34], num_iter=1)  # import/plan warm-up
tracemalloc.start()
out = xrfgpu.richardson_lucy(counts, psf, num_iter=3, background=BACKGROUND)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"map_bytes": counts.nbytes, "tracemalloc_peak": peak, "rss_growth": rss - base_rss}}))
"""


@pytest.mark.parametrize("size", [2048, 4096], ids=lambda s: f"size={s}-dtype=float32")
def test_rl_peak_memory(benchmark, size):
    benchmark.group = "rl-memory"
    code = SCRIPT.format(bench=str(Path(__file__).parent), size=size)

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
