"""PSFModel: per-line σ table, files, energy interpolation from xraylib energies."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from xrfgpu.psf import PSFModel, gaussian, line_energy_kev, normalise_line

SKARN = {"Fe-Ka": 40.0, "Ca-Ka": 50.0, "Si-Ka": 80.0}  # Yang et al. (2022), Fig. 9


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("Fe-Ka", "Fe-Ka"), ("Fe Kα", "Fe-Ka"), ("fe-ka", "Fe-Ka"), ("Ca_Kb", "Ca-Kb"), ("Pb-La", "Pb-La"),
     ("Cu-Ka1", "Cu-Ka1"), ("Sr-Kbeta", "Sr-Kb")],
)
def test_line_names(spelling, canonical):
    assert normalise_line(spelling) == canonical


@pytest.mark.parametrize(("line", "kev"), [("Fe-Ka", 6.40), ("Ca-Ka", 3.69), ("Si-Ka", 1.74), ("Cr-Ka", 5.41),
                                           ("Pb-La", 10.55), ("Pb-Ma", 2.345), ("Au-Ma", 2.123)])
def test_energies_match_tabulated_values(line, kev):
    # reference energies from the X-ray data booklet (LBNL), not from xraylib
    assert line_energy_kev(line) == pytest.approx(kev, abs=0.015)


def test_measured_lines_and_linear_energy_interpolation():
    model = PSFModel(SKARN)
    assert model.sigma_um("Fe Kα") == 40.0
    assert model.lines == ("Fe-Ka", "Ca-Ka", "Si-Ka")
    e_ca, e_fe, e_ti = 3.6917, 6.4039, 4.5109  # Kα energies, X-ray data booklet
    expected = 50.0 + (40.0 - 50.0) * (e_ti - e_ca) / (e_fe - e_ca)
    assert model.sigma_um("Ti-Ka") == pytest.approx(expected, rel=2e-3)
    e_si = 1.7398
    e_k = 3.3138
    assert model.sigma_um("K-Ka") == pytest.approx(80.0 + (50.0 - 80.0) * (e_k - e_si) / (e_ca - e_si), rel=2e-3)


def test_extrapolation_is_explicit():
    model = PSFModel(SKARN)
    with pytest.raises(ValueError, match="outside the measured lines"):
        model.sigma_um("Cu-Ka")
    assert model.sigma_um("Cu-Ka", extrapolate=True) < 40.0
    with pytest.raises(ValueError, match="not enough to interpolate"):
        PSFModel({"Fe-Ka": 40}).sigma_um("Ca-Ka")


def test_psf_at_a_pixel_size():
    model = PSFModel(SKARN)
    np.testing.assert_allclose(model.psf("Fe-Ka", pixel_size_um=10.0), gaussian(None, 4.0))
    assert model.sigma_px("Si-Ka", 10.0) == 8.0


def test_psf_in_namespace(xp):
    h = PSFModel(SKARN).psf("Ca-Ka", 10.0, shape=(41, 41), xp=xp, dtype=xp.float32)
    assert h.shape == (41, 41) and h.dtype == xp.float32


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip(tmp_path, suffix):
    model = PSFModel(SKARN, note="M6 Jetstream, 10 µm step, skarn")
    path = model.save(tmp_path / f"psf{suffix}")
    assert PSFModel.load(path) == model
    assert sorted(os.listdir(tmp_path)) == [f"psf{suffix}"]  # atomic write leaves no temp file


def test_hand_written_files(tmp_path):
    (tmp_path / "a.toml").write_text('[sigma_um]\n"Fe Kα" = 40\nCa-Ka = 50.5\n', encoding="utf-8")
    assert PSFModel.load(tmp_path / "a.toml").sigma_um("Ca-Ka") == 50.5
    (tmp_path / "b.json").write_text(json.dumps({"sigma_um": {"Cr-Ka": 32.5}}), encoding="utf-8")
    assert PSFModel.load(tmp_path / "b.json").sigma_um("Cr-Ka") == 32.5


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [("x.toml", "[sigma_um\n", "cannot parse"), ("x.json", "{", "cannot parse"),
     ("x.json", '{"sigma": {}}', "sigma_um"), ("x.yaml", "", "toml or .json")],
)
def test_bad_files(tmp_path, name, text, match):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        PSFModel.load(tmp_path / name)


@pytest.mark.parametrize(
    ("table", "match"),
    [({}, "at least one"), ({"Fe-Ka": -1}, "positive"), ({"Fe-Ka": float("nan")}, "positive"),
     ({"Xx-Ka": 3}, None), ({"Fe-Ka": 40, "Fe Kα": 41}, "twice"), ({"iron": 40}, "cannot read")],
)
def test_bad_tables(table, match):
    if match is None:  # an unknown element is only found when its energy is needed
        with pytest.raises(ValueError, match="unknown element"):
            PSFModel({**table, "Fe-Ka": 40}).sigma_um("Ca-Ka")
        return
    with pytest.raises(ValueError, match=match):
        PSFModel(table)
