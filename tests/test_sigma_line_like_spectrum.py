"""`estimate_sigma` on a map whose spectrum is far shallower than the fixed scene laws.

The fresh held-out set's dendrite map (seed 200, 512², σ 3 px, the paper's counts) fits a scene law
k^-1.6; the fixed-law fits at k^-3 and k^-3.5 ran ln σ to −∞, σ underflowed to 0.0 and the interval's
ratio divided by it: `estimate_sigma` and `xrfgpu.restore` raised ZeroDivisionError. Such a map
carries no reliable σ: it must answer, flagged, with an interval that holds the truth.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import sigma_scenes_fresh  # noqa: E402

from xrfgpu.psf import estimate_sigma  # noqa: E402
from xrfgpu.psf.blind_sigma import SigmaUncertainWarning  # noqa: E402


@pytest.mark.slow
def test_dendrite_map_answers_flagged_with_the_truth_inside():
    counts, truth, _ = sigma_scenes_fresh.make_case(("dendrites", 200, 512, 3.0, 77.0, 137.5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = estimate_sigma(counts)
    assert any(issubclass(w.category, SigmaUncertainWarning) for w in caught)
    assert not est.reliable
    assert est.interval[0] > 0 and est.interval[0] <= truth <= est.interval[1]
    assert all(s > 0 for s in est.details["spectral_sigmas"].values())
