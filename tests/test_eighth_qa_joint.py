"""What the eighth QA pass (fourteenth session) found in the joint restoration, as users run it.

References are independent of the joint code: the guide check (:func:`xrfgpu.joint.guide_structure`) says which
map has edges; a given weight 0 is the front door's accelerated RL of the map alone (:func:`xrfgpu.restore`);
the σ and gain a map gets are the ones typed on the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

import xrfgpu
from xrfgpu.cli import main
from xrfgpu.joint import guide_structure, joint_richardson_lucy
from xrfgpu.psf import gaussian_for_map

HXN = Path(__file__).parent / "data" / "hxn_nanoparticles_xrf"


def _hxn(element, crop=slice(40, 104)):
    return tifffile.imread(HXN / f"SUM_maps_XRF_{element}_K.tiff")[crop, crop].astype(np.float32)


def _fit_floor(shape, seed=0):
    """A fit's empty channel as MAPS XRF_fits holds Pt_L: 1.0e-10 with 0.2 % noise (its "gain" is about 4e-16)."""
    rng = np.random.default_rng(seed)
    return (1e-10 * (1 + 0.002 * rng.standard_normal(shape))).astype(np.float32)


def test_the_automatic_guide_passes_over_a_map_without_edges():
    # MAPS XRF_fits: the floor channel Pt_L read as the most effective counts, became the guide, failed the guide
    # check, and every map fell back to independent RL
    fe, cr = _hxn("Fe"), _hxn("Cr")
    floor = _fit_floor(fe.shape)
    assert not guide_structure(floor)[0] and guide_structure(fe)[0]
    psf = gaussian_for_map(1.0, (9, 9))
    _, info = joint_richardson_lucy(np.stack([cr, floor, fe]), [psf] * 3, num_iter=5, guide_iter=5,
                                    return_info=True)
    assert info["mode"] == "joint" and info["guide"] != 1
    assert guide_structure(np.stack([cr, floor, fe])[info["guide"]])[0]
    assert 1 in info["guide_passed_over"] and "noise" in info["guide_passed_over"][1]
    assert info["guide_how"].startswith("automatic")
    _, given = joint_richardson_lucy(np.stack([cr, floor, fe]), [psf] * 3, guide=2, num_iter=5, guide_iter=5,
                                     return_info=True)
    assert given["guide_how"] == "given" and given["guide_passed_over"] == {}


@pytest.mark.slow
def test_a_given_weight_zero_is_the_map_restored_alone():
    # it ran the guided EM unaccelerated and was recorded as "guided": 1.1 % of the maximum from restore's result
    fe, cr = _hxn("Fe", slice(None)), _hxn("Cr", slice(None))
    psf = gaussian_for_map(0.45, fe.shape)
    out, info = xrfgpu.restore_stack(np.stack([fe, cr]), psf, "rl", joint=True, background="auto", guide=0,
                                     weight=0.0, return_info=True)
    alone, alone_info = xrfgpu.restore(cr, sigma=0.45, return_info=True)
    assert info["per_map"][1]["role"] == "independent (weight 0 given)"
    assert info["per_map"][1]["iterations"] == alone_info["iterations"]
    np.testing.assert_allclose(np.asarray(out[1]), alone, rtol=0, atol=1e-6 * float(alone.max()))


def test_library_messages_name_the_argument():
    stack = np.stack([_hxn("Fe"), _hxn("Cr")])
    psf = gaussian_for_map(1.0, (9, 9))
    with pytest.raises(ValueError, match="num_iter"):
        joint_richardson_lucy(stack, [psf, psf], num_iter=0)
    with pytest.raises(ValueError, match="weights .* must hold at least one"):
        joint_richardson_lucy(stack, [psf, psf], weights=[])


@pytest.fixture
def scan(tmp_path):
    """The HXN Fe and Cr crops, a constant channel and an empty one, in one .npz."""
    fe, cr = _hxn("Fe"), _hxn("Cr")
    path = tmp_path / "scan.npz"
    np.savez(path, Fe=fe, Cr=cr, Zn=np.full_like(fe, 0.5), Pt=np.zeros_like(fe))
    return path


def _record(path):
    return json.loads(str(np.load(path)["__xrfgpu__"]))["provenance"]


@pytest.mark.parametrize("joint", [False, True])
def test_a_named_psf_sigma_wins_over_the_one_for_all(tmp_path, scan, joint):
    # "--psf-sigma Fe=2px,*=0.45px" restored Fe at 0.45 px, recorded as "given with --psf-sigma"
    out = tmp_path / "out.npz"
    args = ["restore", str(scan), "--elements", "Fe,Cr", "-o", str(out), "-q", "--iterations", "3",
            "--psf-sigma", "Fe=2px,*=0.45px"] + (["--joint"] if joint else [])
    assert main(args) == 0
    psf = _record(out)["psf"]
    assert psf["Fe"]["sigma_px"] == 2.0 and psf["Fe"]["source"]["how"] == "given with --psf-sigma Fe="
    assert psf["Cr"]["sigma_px"] == 0.45


def test_joint_names_the_map_whose_sigma_it_cannot_hold(tmp_path, scan, capsys):
    status = main(["restore", str(scan), "--elements", "Fe,Cr", "--joint", "-o", str(tmp_path / "o.npz"), "-q",
                   "--psf-sigma", "Fe=200px,Cr=0.45px"])
    error = capsys.readouterr().err
    assert status == 2 and "map 'Fe': sigma=200 px is wider than the whole" in error and "'Cr'" not in error


def test_constant_and_empty_maps_are_written_as_they_are(tmp_path, scan, capsys):
    # a constant channel stopped the whole run ("image is constant ... nothing to restore"); zeros were written
    out = tmp_path / "out.npz"
    assert main(["restore", str(scan), "-o", str(out), "--psf-sigma", "1px", "--iterations", "3"]) == 0
    err = capsys.readouterr().err
    assert "Zn: constant (every pixel 0.5), nothing to restore; written as it is" in err
    assert "Pt: all zeros, nothing to restore; written as zeros" in err
    written = np.load(out)
    assert np.all(written["Zn"] == 0.5) and np.all(written["Pt"] == 0) and written["Fe"].std() > 0
    per_element = _record(out)["parameters"]["per_element"]
    assert per_element["Zn"]["skipped"].startswith("constant (every pixel 0.5)")


def test_joint_says_why_a_constant_guide_or_too_few_maps(tmp_path, scan, capsys):
    status = main(["restore", str(scan), "--joint", "--guide", "Zn", "-o", str(tmp_path / "o.npz"), "-q",
                   "--psf-sigma", "1px"])
    assert status == 2 and "--guide 'Zn': map 'Zn' is constant (every pixel 0.5)" in capsys.readouterr().err
    status = main(["restore", str(scan), "--elements", "Fe,Zn,Pt", "--joint", "-o", str(tmp_path / "o.npz"), "-q",
                   "--psf-sigma", "1px"])
    assert status == 2
    assert "2 of the 3 selected are all zeros or constant (Zn, Pt)" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_the_joint_record_says_how_the_guide_was_chosen(tmp_path, scan):
    out = tmp_path / "out.npz"
    assert main(["restore", str(scan), "--elements", "Fe,Cr", "--joint", "-o", str(out), "-q", "--psf-sigma", "1px",
                 "--iterations", "3"]) == 0
    joint = _record(out)["parameters"]["joint"]
    assert joint["guide_how"].startswith("automatic") and joint["guide_passed_over"] == {}
    assert main(["restore", str(scan), "--elements", "Fe,Cr", "--joint", "--guide", "Cr", "-o", str(out), "-q",
                 "--overwrite", "--psf-sigma", "1px", "--iterations", "3"]) == 0
    assert _record(out)["parameters"]["joint"]["guide_how"] == "given"


def test_a_guided_map_records_that_it_ran_to_max_iter():
    # its count is max_iter (a weight > 0 runs to the penalised likelihood's minimiser), recorded as "cv"
    fe, si = _hxn("Fe"), _hxn("Si")
    psf = gaussian_for_map(1.0, (9, 9))
    _, info = joint_richardson_lucy(np.stack([fe, si]), [psf, psf], guide=0, weights=(0.1,), max_iter=12,
                                    return_info=True)
    weak = info["per_map"][1]
    assert weak["weight"] == 0.1 and weak["weight_how"] == "cross-validation"
    assert weak["iterations"] == 12 and weak["stop"] == "max_iter"
