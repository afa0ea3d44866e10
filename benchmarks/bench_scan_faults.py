"""The cost of the front door's scan-fault checks against one FFT of the same map.

:func:`xrfgpu.restore` runs :func:`xrfgpu.lost_lines.find_lost_lines` (lost scan lines stored as 0) and
:func:`xrfgpu.row_offset.alternate_row_offset` (every other line offset along the scan) on every map. One group
per size: each check on a Poisson map with one lost row and no offset (the lost-line check then does its whole
work), against ``scipy.fft.rfft2`` of the same map, the unit a restoration spends hundreds of. Compare the
medians within one run::

    python -m pytest benchmarks/bench_scan_faults.py -p no:randomly -n 0
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from xrfgpu.lost_lines import find_lost_lines
from xrfgpu.row_offset import alternate_row_offset

SIZES = [1024, 4096]


def _map(size):
    counts = np.random.default_rng(0).poisson(100.0, (size, size)).astype(np.float32)
    counts[size // 3] = 0.0  # a lost row: the lost-line check reads every line's evidence
    return counts


@pytest.mark.parametrize("size", SIZES)
def test_lost_lines(benchmark, size):
    image = _map(size)
    benchmark.group = f"scan-faults-{size}"
    benchmark.extra_info.update(role="lost lines", compare_to="rfft2")
    found = benchmark.pedantic(find_lost_lines, args=(image,), kwargs={"xp": np}, rounds=3, iterations=1,
                               warmup_rounds=1)
    assert found.rows == (size // 3,)


@pytest.mark.parametrize("size", SIZES)
def test_line_offset(benchmark, size):
    image = _map(size)
    benchmark.group = f"scan-faults-{size}"
    benchmark.extra_info.update(role="line offset", compare_to="rfft2")
    assert benchmark.pedantic(alternate_row_offset, args=(image,), rounds=3, iterations=1, warmup_rounds=1) is None


@pytest.mark.parametrize("size", SIZES)
def test_rfft2(benchmark, size):
    image = _map(size)
    benchmark.group = f"scan-faults-{size}"
    benchmark.extra_info.update(role="rfft2")
    benchmark.pedantic(scipy.fft.rfft2, args=(image,), rounds=3, iterations=1, warmup_rounds=1)
