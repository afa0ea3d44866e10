"""The demo writes a complete report; the small run is the README's main command."""

import csv

import pytest

from xrfgpu import demo


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return demo.run_demo(tmp_path_factory.mktemp("demo"), size="small", seed=0)


@pytest.mark.slow
def test_report_and_figures_exist(report):
    text = report.read_text(encoding="utf-8")
    for name in ("panels.png", "sigma_sweep.png", "sigma_sweep.csv", "table.csv"):
        path = report.parent / name
        assert path.exists() and path.stat().st_size > 0
        assert name in text or name.endswith(".csv")
    assert (report.parent / "panels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the PSF used and how it was obtained are printed
    assert "PSF used" in text and "estimate_sigma" in text and "knife-edge" in text


@pytest.mark.slow
def test_table_rows_are_consistent(report):
    rows = list(csv.DictReader((report.parent / "table.csv").read_text().splitlines()))
    assert rows[0]["method"] == "raw scan"
    raw = float(rows[0]["lp_per_mm"])
    for r in rows[1:]:
        if r["lp_per_mm"]:
            assert float(r["gain_percent"]) == pytest.approx(100 * (float(r["lp_per_mm"]) / raw - 1), abs=1e-6)
        assert 0 <= float(r["mse"]) and -1 <= float(r["ssim"]) <= 1


@pytest.mark.slow
def test_sweep_covers_the_papers_range(report):
    rows = list(csv.DictReader((report.parent / "sigma_sweep.csv").read_text().splitlines()))
    sig = [float(r["sigma_um"]) for r in rows]
    assert min(sig) == 27.5 and max(sig) == 40.0


def test_bad_size(tmp_path):
    with pytest.raises(ValueError, match="size"):
        demo.run_demo(tmp_path, size="huge")
