"""xrfgpu.output_safety on its own: no-replace publishing (each fallback), all-or-nothing pairs, rollback,
recognition of earlier xrfgpu outputs, temporary names.

Outcomes are checked against the file system itself (what exists, its bytes), not against xrfgpu's output.
"""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from xrfgpu import output_safety as osafe
from xrfgpu.output_safety import (
    Output,
    OutputExistsError,
    UnsafeOutputError,
    check_outputs,
    is_hidden_or_temp,
    is_temp_name,
    is_xrfgpu_output,
    temp_name,
    write_outputs,
)


def _text(s):
    return lambda tmp: Path(tmp).write_text(s, encoding="utf-8")


def _record(tag):
    return _text(json.dumps({"xrfgpu": {"run": tag}}))


def _listing(folder):
    return sorted(os.listdir(folder))


@pytest.fixture(params=["link", "renameat2", "exclusive"])
def publish_path(request, monkeypatch):
    """Force each no-replace mechanism in turn: os.link, renameat2(RENAME_NOREPLACE), O_EXCL reservation."""
    real_link = os.link

    def no_link(src, dst, **kw):
        raise OSError(errno.EPERM, "hard links not supported here", str(dst))

    if request.param in ("renameat2", "exclusive"):
        monkeypatch.setattr(osafe.os, "link", no_link)
    if request.param == "exclusive":
        def no_renameat2(src, dst):
            raise NotImplementedError

        monkeypatch.setattr(osafe, "_renameat2_noreplace", no_renameat2)
    yield request.param
    monkeypatch.setattr(osafe.os, "link", real_link)


def test_new_file_is_published_and_never_replaced(tmp_path, publish_path):
    out = tmp_path / "out.json"
    write_outputs([Output(out, _record("a"))])
    assert json.loads(out.read_text())["xrfgpu"]["run"] == "a"
    with pytest.raises(OutputExistsError):
        write_outputs([Output(out, _record("b"))], check=False)  # no-replace at publish time, not only the check
    assert json.loads(out.read_text())["xrfgpu"]["run"] == "a"
    assert _listing(tmp_path) == ["out.json"]


def test_new_folder_is_published_and_never_replaced(tmp_path, publish_path):
    out = tmp_path / "outdir"

    def fill(tag):
        def write(tmp):
            (tmp / "xrfgpu.json").write_text(json.dumps({"xrfgpu": {"run": tag, "files": {}}}))
        return write

    write_outputs([Output(out, fill("a"), folder=True)])
    with pytest.raises(OutputExistsError):
        write_outputs([Output(out, fill("b"), folder=True)], check=False)
    assert json.loads((out / "xrfgpu.json").read_text())["xrfgpu"]["run"] == "a"
    assert _listing(tmp_path) == ["outdir"]
    empty = tmp_path / "emptydir"
    empty.mkdir()  # an empty folder is a folder that exists: not replaced either
    with pytest.raises(OutputExistsError):
        write_outputs([Output(empty, fill("c"), folder=True)], check=False)
    assert _listing(empty) == []


def test_pair_lands_together_or_not_at_all(tmp_path):
    side, data = tmp_path / "m.npy.json", tmp_path / "m.npy"

    def someone_else_creates_the_map(tmp):
        data.write_bytes(b"another program's file")  # appears while we write
        with open(tmp, "wb") as fh:
            np.save(fh, np.zeros(3))

    with pytest.raises(OutputExistsError):
        write_outputs([Output(side, _record("a")), Output(data, someone_else_creates_the_map)])
    assert _listing(tmp_path) == ["m.npy"] and data.read_bytes() == b"another program's file"

    data.unlink()

    def fails(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_outputs([Output(side, _record("a")), Output(data, fails)])
    assert _listing(tmp_path) == []


def test_failed_replacement_restores_the_earlier_pair(tmp_path, monkeypatch):
    side, data = tmp_path / "m.csv.json", tmp_path / "m.csv"
    write_outputs([Output(side, _record("old")), Output(data, _text("1,2\n"))])
    real_replace = os.replace

    def replace(src, dst):
        if str(dst) == str(data):
            raise OSError(errno.EIO, "I/O error", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(osafe.os, "replace", replace)
    with pytest.raises(OSError, match="I/O error"):
        write_outputs([Output(side, _record("new")), Output(data, _text("3,4\n"))], overwrite=True)
    monkeypatch.setattr(osafe.os, "replace", real_replace)
    assert json.loads(side.read_text())["xrfgpu"]["run"] == "old" and data.read_text() == "1,2\n"
    assert _listing(tmp_path) == ["m.csv", "m.csv.json"]
    write_outputs([Output(side, _record("new")), Output(data, _text("3,4\n"))], overwrite=True)
    assert json.loads(side.read_text())["xrfgpu"]["run"] == "new" and data.read_text() == "3,4\n"
    assert _listing(tmp_path) == ["m.csv", "m.csv.json"]


def test_recognition_of_earlier_outputs(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"x")
    assert not is_xrfgpu_output(tmp_path / "a.npy")[0]
    (tmp_path / "a.npy.json").write_text('{"xrfgpu": {}}')
    assert is_xrfgpu_output(tmp_path / "a.npy") == (True, "")
    (tmp_path / "b.json").write_text('{"elements": ["Fe"]}')  # a user's sidecar: not ours
    assert not is_xrfgpu_output(tmp_path / "b.json")[0]
    (tmp_path / "p.toml").write_text("# xrfgpu PSF model\n[sigma_um]\n")
    assert is_xrfgpu_output(tmp_path / "p.toml")[0]
    (tmp_path / "q.toml").write_text("[sigma_um]\n")
    assert not is_xrfgpu_output(tmp_path / "q.toml")[0]
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "xrfgpu.json").write_text('{"xrfgpu": {"files": {"Fe": "Fe.csv"}}}')
    (folder / "Fe.csv").write_text("1\n")
    assert is_xrfgpu_output(folder)[0]
    (folder / "notes.txt").write_text("mine")
    ok, why = is_xrfgpu_output(folder)
    assert not ok and "notes.txt" in why


def test_check_refuses_paths_around_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.tif").write_bytes(b"x")
    cases = {
        "in": "is the input",
        "in/a.tif": "inside the input folder",
        "in/new.tif": "inside the input folder",
        ".": "holds the input",
    }
    for out, message in cases.items():
        with pytest.raises(UnsafeOutputError, match=message):
            check_outputs([out], ["in"], overwrite=True)
    with pytest.raises(UnsafeOutputError, match="is the input file"):
        check_outputs(["in/a.tif"], ["in/a.tif"], overwrite=True)
    with pytest.raises(UnsafeOutputError, match="sidecar of input"):
        check_outputs(["in/a.tif.json"], ["in/a.tif"], overwrite=True)
    with pytest.raises(UnsafeOutputError, match="current folder"):
        check_outputs(["."], [], overwrite=True)
    with pytest.raises(UnsafeOutputError, match="current folder"):
        check_outputs([".."], [], overwrite=True)
    with pytest.raises(UnsafeOutputError, match="same path"):
        check_outputs(["x.png", "./x.png"], [])
    check_outputs(["out.tif", "out.tif.json"], ["in/a.tif"])  # beside the input folder: fine


def test_temp_names_are_hidden_and_never_map_names(tmp_path):
    name = temp_name("restored.tif")
    assert is_temp_name(name) and is_hidden_or_temp(name) and name.startswith(".")
    assert not name.endswith((".tif", ".tiff", ".npy", ".npz", ".csv", ".txt", ".h5"))
    assert not is_temp_name("restored.tif") and not is_hidden_or_temp("Fe_K.csv")
    assert is_hidden_or_temp("._Fe_K.csv")  # macOS resource fork files are not maps either


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_figures_name_xrfgpu_and_only_those_are_replaced(tmp_path, fmt):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from xrfgpu.figures import save_figure

    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    fig.subplots().plot([0, 1], [1, 0])
    ours, theirs = tmp_path / f"ours.{fmt}", tmp_path / f"theirs.{fmt}"
    save_figure(fig, ours)
    fig.savefig(theirs, format=fmt)  # Matplotlib's own Creator/Software entry, as any other program's figure
    assert is_xrfgpu_output(ours)[0] and not is_xrfgpu_output(theirs)[0]
    save_figure(fig, ours, overwrite=True)
    before = theirs.read_bytes()
    with pytest.raises(UnsafeOutputError, match="only earlier xrfgpu outputs"):
        save_figure(fig, theirs, overwrite=True)
    assert theirs.read_bytes() == before
