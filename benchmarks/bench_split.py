"""The cost of drawing the cross-validation split in the map's canonical orientation.

``xrfgpu.stopping.split_counts`` finds the map's canonical orientation (its leading rows compared over the
flips and transpositions) and draws the binomial split there; the draw in the stored orientation is the plain
``numpy.random.Generator.binomial`` of the counts. One case per size: the canonical draw against the plain one
(the kept-draw memo cleared each round), and the orientation search alone, on a transposed, flipped Poisson map.
"""

from __future__ import annotations

import numpy as np
import pytest

from xrfgpu import stopping

SIZES = [512, 2048]


def _map(size):
    counts = np.random.default_rng(0).poisson(30.0, (size, size)).astype(np.float64)
    return np.ascontiguousarray(counts.T[::-1])  # stored turned: its canonical form is another orientation


@pytest.mark.parametrize("size", SIZES)
def test_canonical_draw(benchmark, size):
    counts = _map(size)
    benchmark.group = f"split-{size}"
    benchmark.extra_info.update(role="canonical", compare_to="stored")

    def draw():
        stopping._LAST_SPLIT.clear()
        return stopping.split_counts(counts, seed=0)

    benchmark.pedantic(draw, rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("size", SIZES)
def test_stored_draw(benchmark, size):
    counts = _map(size)
    benchmark.group = f"split-{size}"
    benchmark.extra_info.update(role="stored", compare_to=None)

    def draw():
        first = np.random.default_rng(0).binomial(counts.astype(np.int64), 0.5).astype(np.float64)
        return first, counts - first

    benchmark.pedantic(draw, rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("size", SIZES)
def test_orientation_search(benchmark, size):
    counts = _map(size)
    benchmark.group = f"orientation-{size}"
    benchmark.pedantic(stopping.canonical_orientation, args=(counts,), rounds=5, iterations=1, warmup_rounds=1)
