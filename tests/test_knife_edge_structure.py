"""`fit_knife_edge` says when its "edge" is not one: the residual's correlation along the ESF.

A map without a straight edge (particles on both sides) still gives an erf fit, and with enough pixels
a tight one: the HXN Fe window of rows 20–80, columns 0–60 fits σ 6.7 ± 0.64 px (9.5 %, under the
25 % that warns). What gives it away is the residual: structure wider than an ESF bin makes
neighbouring residuals alike, where a blurred step plus independent noise leaves them uncorrelated.
The references here are the analytic blurred step (a known truth) and real maps with no edge.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

from xrfgpu.cli import main
from xrfgpu.psf import fit_knife_edge
from xrfgpu.psf.knife_edge import RESIDUAL_STRUCTURE_Z

FE = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf" / "SUM_maps_XRF_Fe_K.tiff"


def _slanted_edge(rows, cols, sigma, signal, angle_deg, rng, background=140.0):
    """Poisson counts of a straight step blurred by a Gaussian of ``sigma`` px, normal at ``angle_deg``."""
    vv, uu = np.mgrid[:rows, :cols].astype(np.float64)
    theta = math.radians(angle_deg)
    t = uu * math.cos(theta) + vv * math.sin(theta)
    mean = background + signal * 0.5 * (1.0 + erf((t - t.mean()) / (math.sqrt(2.0) * sigma)))
    return rng.poisson(mean).astype(np.float64)


def test_ideal_edges_read_as_noise():
    # 24 blurred steps at any angle, σ 1–6 px, the paper's counts up to 20 000: z stays ~ N(0, 1)
    rng = np.random.default_rng(7)
    zs = []
    for k in range(24):
        sigma = (1.0, 2.5, 4.0, 6.0)[k % 4]
        signal = (77.0, 2000.0, 20000.0)[k % 3]
        fit = fit_knife_edge(_slanted_edge(64, 64 + 32 * (k % 2), sigma, signal, rng.uniform(-90, 90), rng))
        assert fit.sigma == pytest.approx(sigma, rel=0.15)
        zs.append(fit.residual_correlation_z)
    zs = np.array(zs)
    assert np.all(np.isfinite(zs))
    assert np.max(np.abs(zs)) < 0.8 * RESIDUAL_STRUCTURE_Z
    assert abs(float(np.median(zs))) < 1.0


def test_a_profile_with_a_second_edge_is_structured():
    # a 1-D profile holding a step and, 20 px on, a bump the erf cannot model: the residual is a hump
    rng = np.random.default_rng(3)
    t = np.arange(120.0)
    mean = 140 + 2000 * 0.5 * (1 + erf((t - 40.0) / (math.sqrt(2) * 3.0))) + 600 * np.exp(-0.5 * ((t - 80) / 6.0) ** 2)
    fit = fit_knife_edge(rng.poisson(mean).astype(np.float64))
    assert fit.residual_correlation_z > RESIDUAL_STRUCTURE_Z


def test_hxn_window_without_an_edge_is_structured():
    import tifffile

    fe = tifffile.imread(FE).astype(np.float64)
    fit = fit_knife_edge(fe[20:80, 0:60])
    assert fit.sigma_stderr < 0.25 * fit.sigma  # tight: the standard error alone does not warn
    assert fit.residual_correlation_z > RESIDUAL_STRUCTURE_Z


def test_cli_warns_on_structure_and_records_z(tmp_path, capsys):
    import tifffile

    fe = tifffile.imread(FE).astype(np.float64)
    np.save(tmp_path / "fe_window.npy", fe[20:80, 0:60])
    assert main(["psf", "edge", str(tmp_path / "fe_window.npy"), "--pixel-size", "0.15um", "--line", "Fe-Ka",
                 "-o", str(tmp_path / "fe.toml"), "--figure", str(tmp_path / "fe.png"), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["residual_correlation_z"] > RESIDUAL_STRUCTURE_Z
    assert "departs from a blurred step" in result["warning"] and "uncertain" not in result["warning"]
    assert "departs from a blurred step" in captured.err

    edge = _slanted_edge(64, 64, 2.5, 300.0, 12.0, np.random.default_rng(1), background=20.0)
    np.save(tmp_path / "edge.npy", edge)
    assert main(["psf", "edge", str(tmp_path / "edge.npy"), "--pixel-size", "5um", "--line", "Fe-Ka",
                 "-o", str(tmp_path / "e.toml"), "--figure", str(tmp_path / "e.png"), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "warning" not in result and "Warning" not in captured.err
    assert abs(result["residual_correlation_z"]) < RESIDUAL_STRUCTURE_Z
