"""The ``xrfgpu`` command: from map files to sharper maps, without writing Python.

Subcommands
-----------
``restore``   restore every selected element map of a file (per-element PSF)
``psf``       measure the PSF from a dot scan, a knife edge or blindly
``compare``   before/after figure with a line profile, and metrics
``demo``      the paper's experiment on synthetic data
``info``      versions, backends (NumPy, CuPy and its device, Dask), kernel cache

Every output is written to a temporary file and published into place
(:mod:`xrfgpu.output_safety`): never on, in or around an input, never over
an existing file without ``--overwrite``, and with it only over an earlier
xrfgpu output; the input is only opened for reading. Errors name the file
and the problem in one line: a missing, corrupt, empty or truncated input
file and a refused output path exit with status 2 (as usage errors), other
failures with status 1. Progress goes to stderr on a terminal
only; ``--json`` prints one JSON document on stdout. Nothing else is
written to standard output: ``-o -`` (and ``--figure -``, ``demo -``) is
refused in one line (exit status 2) rather than written as a file named
``-``, which is ``./-``.

``main(argv)`` runs the command in-process and returns the exit status;
``python -m xrfgpu`` and the installed ``xrfgpu`` script call it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import sys
import time
import types
import warnings
from pathlib import Path

import click
import numpy as np

from . import __version__
from ._backend import is_float64
from ._validate import MAX_NUM_ITER
from .fista import DEFAULT_NUM_ITER as _FISTA_NUM_ITER
from .front_door import (CAUTION_KEYS, CV_SPLIT_KEYS, DEFAULT_GOAL, GOAL_GUARD_KEYS, GOALS, filled_for_estimators,
                         goal_factors)
from .row_offset import alternate_row_offset

__all__ = ["main", "cli", "load_psf_table", "save_psf_table", "psf_for_element"]

METHODS = ("rl", "wiener", "fista", "tikhonov", "blind", "blind-rl")
_DEFAULT_ITER = {"rl": 30, "fista": _FISTA_NUM_ITER, "blind-rl": 30}


class CommandError(click.ClickException):
    """An error the user can fix; printed as ``Error: <message>``, exit status 1."""


class FileRefusedError(CommandError):
    """A missing, corrupt, empty or truncated input file, or a refused output path: exit status 2."""

    exit_code = 2


class InputRefusedError(CommandError):
    """Input the library refuses (a map too small, an element the file lacks, an even kernel size, a length
    without unit ...): a ValueError/TypeError raised by xrfgpu's own checks, or a name not found. Exit status 2,
    as usage errors; failures (a full disk, a missing package) and internal errors keep status 1."""

    exit_code = 2


def _refused_types():
    from .io import MapFileError
    from .output_safety import OutputExistsError, UnsafeOutputError

    return (MapFileError, UnsafeOutputError, OutputExistsError, FileExistsError, FileNotFoundError)


def _message(exc):
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.errno and exc.strerror and exc.filename is None:
        return exc.strerror  # "cannot write output 'x.tif': No space left on device", without "[Errno 28] "
    return str(exc) or type(exc).__name__


def _naming_the_map(message):
    """``message`` prefixed with the input and map being restored (``restore`` sets them), unless it names them."""
    ctx = click.get_current_context(silent=True)
    where = ctx.meta.get("xrfgpu.current_map") if ctx is not None else None
    if where is None or repr(where[1]) in message:
        return message
    return f"input {str(where[0])!r}: map {where[1]!r}: {message}"


# the library's keywords that its messages advise, as this command line spells them
_OPTION_SPELLING = {"pass background=": "pass --background", "weight 0 in mask=": "weight 0 in a --mask file",
                    "a fixed count (num_iter=)": "a fixed count (--iterations N)",
                    # --joint always cross-validates each map's weight, so only --mask is a way on
                    "; or stop without cross-validation, at fixed counts and weights (num_iter=, guide_iter=, "
                    "weight=)": ""}


def _command_line_spelling(message):
    """``message`` with the library's advice (``pass background=``) in the command line's words (``--background``)."""
    for library, option in _OPTION_SPELLING.items():
        message = message.replace(library, option)
    return message


def _raised_in(exc):
    """The module whose code raised ``exc`` (the innermost frame of its traceback), or ""."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last.tb_frame.f_globals.get("__name__", "") if last is not None else ""


def _friendly(func):
    """Turn library errors (bad file, unit, element, device) into a one-line CLI error.

    Exit status 2 for refused input: files (:func:`_refused_types`), names the input lacks
    (:class:`xrfgpu.io.NameNotFoundError`) and every ValueError/TypeError that xrfgpu's own checks raise
    (their messages name the problem; the map's name is added). Status 1 for failures (OSError such as a full
    disk, a missing package, RuntimeError) and for a ValueError/TypeError raised inside another library
    (NumPy, SciPy: an internal error, said so in its line, not a refusal of the input).
    """
    from .io import NameNotFoundError

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except _refused_types() as exc:
            raise FileRefusedError(" ".join(_message(exc).split())) from exc
        except NameNotFoundError as exc:
            raise InputRefusedError(_message(exc)) from exc
        except (ValueError, TypeError) as exc:  # what a map's values can cause: the message names the map
            where = _raised_in(exc)
            if where == "xrfgpu" or where.startswith("xrfgpu."):
                raise InputRefusedError(_naming_the_map(_command_line_spelling(_message(exc)))) from exc
            raise CommandError(_naming_the_map(f"internal error in {where or 'Python'} "
                                               f"({type(exc).__name__}): {_message(exc)}")) from exc
        except (OSError, KeyError, ImportError, RuntimeError) as exc:
            raise CommandError(_message(exc)) from exc

    return wrapper


def _no_standard_output(what, example, instead=""):
    """Click callback of an output option or argument: ``-`` (standard output) is refused in one line.

    Every output of xrfgpu is a file or folder (published atomically, with a record beside or inside it);
    a user typing ``-`` expects standard output, and got a file or folder named ``-``. A file of that
    name is still ``./-`` (the option's type is a plain ``click.Path``, so the spelling typed is seen
    here; the callback returns it as a :class:`~pathlib.Path`). ``instead``: what does print on stdout.
    """

    def check(ctx, param, value):
        if value is None:
            return None
        if value == "-":
            option = "OUTPUT_DIR" if param.param_type_name == "argument" else "/".join(param.opts)
            raise FileRefusedError(f"{option} -: standard output is not supported: {what}; give its name, e.g. "
                                   f"{example}, or ./- for one named '-'{'; ' + instead if instead else ''}")
        return Path(value)

    return check


# --------------------------------------------------------------------------- progress and output


class _Progress:
    """Progress on stderr for stages that can take seconds: only on a terminal, never with --quiet/--json.

    ``line`` prints a line; ``bar`` redraws one line with a bar (iterations,
    σ fits, pyramid levels); ``stage`` is a context manager for work that
    reports nothing itself (σ estimation, cross-validated stopping, blind
    kernels): it names the stage at once, redraws the elapsed seconds from a
    background thread, and ends with the time taken.
    """

    WIDTH = 24

    def __init__(self, enabled, stream=None):
        self.enabled = bool(enabled)
        self.stream = stream

    @classmethod
    def for_options(cls, quiet, as_json):
        isatty = getattr(sys.stderr, "isatty", None)
        return cls(not quiet and not as_json and bool(isatty and isatty()))

    def _write(self, text):
        stream = self.stream or sys.stderr
        stream.write(text)
        stream.flush()

    def line(self, text):
        if self.enabled:
            self._write(text + "\n")

    @classmethod
    def render_bar(cls, done, total):
        """``[#########---------------] 9/24``"""
        total = max(int(total), 1)
        filled = min(cls.WIDTH, int(round(cls.WIDTH * done / total)))
        return f"[{'#' * filled}{'-' * (cls.WIDTH - filled)}] {done}/{total}"

    def bar(self, label, done, total):
        if self.enabled:
            self._write(f"\r  {label} {self.render_bar(done, total)}")
            if done >= total:
                self._write("\n")

    def iteration(self, label, it, total):
        self.bar(f"{label}: iterations", it, total)

    def stage(self, label):
        """Context manager: ``with progress.stage("estimating σ"): ...``."""
        import contextlib
        import threading

        @contextlib.contextmanager
        def running():
            state = types.SimpleNamespace(label=label)  # the caller may update .label (e.g. with a bar)
            if not self.enabled:
                yield state
                return
            t0 = time.perf_counter()
            done = threading.Event()

            def tick():
                while not done.wait(0.5):
                    self._write(f"\r  {state.label} … {time.perf_counter() - t0:.0f} s\x1b[K")

            self._write(f"  {label} …")
            thread = threading.Thread(target=tick, daemon=True)
            thread.start()
            try:
                yield state
            finally:
                done.set()
                thread.join()
                self._write(f"\r  {state.label}: {time.perf_counter() - t0:.1f} s\x1b[K\n")

        return running()


def _say(quiet, as_json, text):
    if not quiet and not as_json:
        click.echo(text)


def _warn(quiet, text):
    if not quiet:
        click.echo(f"Warning: {text}", err=True)


def _read_maps(path, quiet=False, **options):
    """:func:`xrfgpu.io.read_maps`, its :class:`xrfgpu.io.MapReadWarning` messages (a repeated map name
    renamed, pandas' CSV header dropped, pixels that are not square) said in a ``Warning:`` line each, as the
    command line says its other warnings, instead of Python's warning format with a source line."""
    from .io import MapReadWarning, read_maps

    with _collected_warnings(MapReadWarning) as messages:
        maps = read_maps(path, **options)
    for text in messages:
        _warn(quiet, text)
    return maps


@contextlib.contextmanager
def _collected_warnings(category):
    """Collect the messages of the warnings of ``category`` raised in the block.

    Yields a list that holds them once the block has ended (the caller prints each in a line of its own,
    not as a Python warning with a source line); other warnings are passed on as they came.
    """
    messages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        yield messages
    for w in caught:
        if issubclass(w.category, category):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _sigma_warnings():
    """:func:`_collected_warnings` of :class:`xrfgpu.psf.blind_sigma.SigmaUncertainWarning` (the caller prints
    each in a line naming its map)."""
    from .psf.blind_sigma import SigmaUncertainWarning

    return _collected_warnings(SigmaUncertainWarning)


def _check_dataset_option(maps, dataset, input_path):
    """Refuse ``--dataset`` for input that has no datasets to choose from (it was silently ignored)."""
    if dataset is not None and maps.metadata.get("layout") not in ("pyxrf", "maps"):
        kind = maps.metadata.get("layout") or maps.metadata.get("format") or "this"
        raise click.UsageError(f"--dataset {dataset!r} picks the maps of a PyXRF or MAPS HDF5 file; "
                               f"{str(input_path)!r} is {kind} input, which has no datasets to pick")


def _report_skipped(maps, quiet):
    """One line on stderr per file of an input folder that is not a map (e.g. LICENSE.txt), and per text map
    with blank cells, which are read as missing pixels (NaN)."""
    for entry in maps.metadata.get("skipped") or []:
        if not quiet:
            click.echo(f"skipped {entry['file']}: {entry['reason']}", err=True)
    for entry in maps.metadata.get("blank_cells") or []:
        count, first = entry["count"], entry["first"]
        _warn(quiet, f"{entry['file']} (map {entry['map']!r}): {count} blank cell{'s' if count > 1 else ''} read as "
                     f"missing pixels (NaN), the first at line {first['line']}, column {first['column']}")


def _warn_earlier_outputs(input_path, maps, quiet):
    """One line when an input folder mixes maps with earlier xrfgpu outputs (a map restored into its input's
    folder): those are read as maps like the others, and restored again. A folder of outputs only is meant."""
    files = list(maps.metadata.get("files") or [])
    if quiet or maps.metadata.get("format") != "folder" or not Path(input_path).is_dir():
        return
    from .output_safety import is_xrfgpu_output

    ours = [f for f in files if is_xrfgpu_output(Path(input_path) / f)[0]]
    if ours and len(ours) < len(files):
        one = len(ours) == 1
        _warn(quiet, f"{', '.join(ours)} in {str(input_path)!r} {'is an earlier xrfgpu output' if one else 'are earlier xrfgpu outputs'}"
                     f", read as {'a map' if one else 'maps'} like the others and restored again; move "
                     f"{'it' if one else 'them'} out of the folder, or choose the maps with --elements")


# --------------------------------------------------------------------------- PSF tables


def _load_toml_or_json(path):
    from .io import MapFileError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PSF file {str(path)!r}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MapFileError(f"PSF file {str(path)!r}: cannot read it ({exc.strerror or exc})") from None
    if not raw.strip():
        raise MapFileError(f"PSF file {str(path)!r} is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MapFileError(f"PSF file {str(path)!r} is not a text file (not UTF-8)") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise MapFileError(f"PSF file {str(path)!r} is not valid JSON ({exc})") from None
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MapFileError(f"PSF file {str(path)!r} is not valid TOML ({exc})") from None


def load_psf_table(path):
    """Read a per-line PSF table: ``({line: {"sigma_um": float, ...}}, pixel_size_um, PSFModel or None)``.

    Two spellings are accepted (TOML, or JSON by suffix):

    * the :class:`xrfgpu.psf.PSFModel` file, ``[sigma_um]`` mapping lines to σ
      in µm (what ``xrfgpu psf`` writes, with optional ``[measurements.<line>]``
      tables of how each σ was measured). Lines missing from the table are
      interpolated in emission energy by the model;
    * ``[lines]`` mapping lines to σ as a number in µm, a string with a unit
      (``"40um"``) or a table with ``sigma_um`` (other keys are kept for the
      provenance), with an optional ``default`` line.

    ``pixel_size_um`` at the top level is optional in both.
    """
    from .units import parse_length_um

    doc = _load_toml_or_json(path)
    model = None
    if isinstance(doc, dict) and isinstance(doc.get("sigma_um"), dict):
        from .psf import PSFModel

        try:
            model = PSFModel(doc["sigma_um"], note=str(doc.get("note", "")))
        except (TypeError, ValueError) as exc:  # e.g. a 'default' line, which only a [lines] table takes
            raise type(exc)(f"PSF file {str(path)!r}, [sigma_um] table: {exc}") from None
        measured = doc.get("measurements") or {}
        raw = {k: {"sigma_um": v, **(measured.get(k) or {})} for k, v in doc["sigma_um"].items()}
    elif isinstance(doc, dict) and isinstance(doc.get("lines"), dict) and doc["lines"]:
        raw = doc["lines"]
    else:
        from .io import MapFileError

        raise MapFileError(f"PSF file {str(path)!r} has no [sigma_um] (or [lines]) table of σ per element line")
    lines = {}
    for name, entry in raw.items():
        what = f"σ of {name!r} in PSF file {str(path)!r}"
        if isinstance(entry, dict):
            if "sigma_um" not in entry and "fwhm_um" not in entry:
                raise ValueError(f"{what}: the table needs sigma_um (or fwhm_um)")
            info = dict(entry)
            if "sigma_um" in entry:
                sigma = parse_length_um(entry["sigma_um"], what=what)
            else:
                from .psf import fwhm_to_sigma

                sigma = fwhm_to_sigma(parse_length_um(entry["fwhm_um"], what=what))
        else:
            info = {}
            sigma = parse_length_um(entry, what=what)
        info["sigma_um"] = float(sigma)
        lines[str(name)] = info
    pixel = doc.get("pixel_size_um")
    if pixel is not None:
        pixel = parse_length_um(pixel, what=f"pixel_size_um in PSF file {str(path)!r}")
    return lines, pixel, model


def save_psf_table(path, lines, *, pixel_size_um=None, comment=None, overwrite=False, inputs=(), also=()):
    """Write a PSF table readable by :meth:`xrfgpu.psf.PSFModel.load` and :func:`load_psf_table`; atomically.

    ``lines`` maps line names to dicts with ``sigma_um`` and other scalar
    facts (stderr, method, fit parameters), stored under
    ``[measurements."<line>"]``. An existing file is replaced only with
    ``overwrite`` and only if xrfgpu wrote it (its first line says so); no
    path of ``inputs`` is ever written (:func:`xrfgpu.output_safety.check_outputs`).
    ``also``: further :class:`xrfgpu.output_safety.Output` (the fit figure)
    published with the table, all or none.
    """
    from .output_safety import Output, write_outputs

    path = Path(path)

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(float(v)) if math.isfinite(v) else '"nan"'
        return json.dumps(str(v), ensure_ascii=False)

    out = ["# xrfgpu PSF model: Gaussian sigma per X-ray line, in micrometres"]
    out.append(f"note = {json.dumps(str(comment or ''), ensure_ascii=False)}")
    if pixel_size_um is not None:
        out.append(f"pixel_size_um = {float(pixel_size_um)!r}")
    out += ["", "[sigma_um]"]
    out += [f"{json.dumps(name)} = {float(info['sigma_um'])!r}" for name, info in lines.items()]
    for name, info in lines.items():
        rest = {k: v for k, v in info.items() if k != "sigma_um" and v is not None}
        if rest:
            out += ["", f"[measurements.{json.dumps(name)}]"]
            out += [f"{k} = {value(v)}" for k, v in rest.items()]
    text = "\n".join(out) + "\n"
    write_outputs([Output(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")), *also], inputs=inputs,
                  overwrite=overwrite)
    return path


def _line_of_map(name):
    """The X-ray line a map's name reads as (``"Fe_K"`` → ``"Fe-Ka"``; MAPS names K-line maps by the element
    alone, ``"Ti"`` → ``"Ti-Ka"``); ValueError when it reads as none (``"TFY"``, ``"s_e"``, ``"ROI3"``)."""
    from .psf.model import normalise_line

    line = name.replace("_", "-")
    if re.fullmatch(r"[A-Z][a-z]?", line):
        line += "-Ka"
    return normalise_line(line)


def psf_for_element(element, lines, *, source, model=None, extrapolate=False):
    """(line, entry) for ``element``: the table's line (exact, or same element and shell),
    else the PSF model's energy interpolation, else a ``default`` line.

    A line outside the energies of the model's measured lines is refused, naming
    ``--psf-extrapolate``; with ``extrapolate`` the model's end segment is
    extended to it (:meth:`xrfgpu.psf.PSFModel.sigma_um` with
    ``extrapolate=True``) and the entry says ``extrapolated``.
    """
    from .io import match_name

    try:
        key = match_name(element, lines, what="PSF line", where=source)
        return key, lines[key]
    except KeyError as exc:
        reason = _message(exc)
    if model is not None:
        from .psf.model import line_energy_kev

        interpolated = "linear in emission energy (xraylib)"
        try:
            line = _line_of_map(element)
            try:
                return line, {"sigma_um": float(model.sigma_um(line)), "interpolated": interpolated}
            except ValueError as exc:
                try:  # the one refusal that extrapolation lifts: a line beyond the measured energies
                    sigma = float(model.sigma_um(line, extrapolate=True))
                except ValueError:
                    raise exc from None
            if extrapolate:
                return line, {"sigma_um": sigma, "extrapolated": True,
                              "interpolated": f"{interpolated}, extended beyond the measured lines' energies "
                                              "(--psf-extrapolate)"}
            energies = sorted(line_energy_kev(k) for k in model.lines)
            reason = (f"{reason}; {line} ({line_energy_kev(line):.3f} keV) lies outside the measured lines "
                      f"({energies[0]:.3f}–{energies[-1]:.3f} keV): measure it, or pass --psf-extrapolate to "
                      "extend the nearest segment in emission energy")
        except (ValueError, ImportError) as exc:
            reason = f"{reason}; {exc}"
    if "default" in lines:
        return "default", lines["default"]
    # a [sigma_um] table (a PSF model) names X-ray lines only: it cannot hold a 'default' line
    remedy = "add its line to the [sigma_um] table" if model is not None else "add it or a 'default' line"
    from .io import NameNotFoundError

    raise NameNotFoundError(
        f"PSF file {source!r} has no σ for element {element!r} (lines: {', '.join(lines)}); {remedy} ({reason})"
    )


def _parse_sigma_length(text, what):
    """One ``--psf-sigma`` length: ``("px", σ in pixels)`` for ``2px``, else ``("um", σ in µm)``."""
    import re

    from .units import parse_length_um

    m = re.match(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(px|pix|pixel|pixels)\s*$", str(text),
                 re.IGNORECASE)
    if m is None:
        return "um", parse_length_um(text, what=what)
    value = float(m.group(1))
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} {text!r} must be a positive number of pixels")
    return "px", value


def _parse_per_element(text, option, parse_value, example):
    """``{name or "*": value}`` of an option that takes one value for all maps or ``NAME=VALUE`` pairs.

    ``parse_value(text, what)`` reads one value; ``example`` shows a single value in the message of a
    mixed list.
    """
    if "=" not in text:
        return {"*": parse_value(text, option)}
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"{option} {text!r}: write either one value ({example!r}) or NAME=VALUE pairs")
        name, value = part.split("=", 1)
        out[name.strip()] = parse_value(value, f"{option} for {name.strip()!r}")
    return out


def _parse_sigma_option(text):
    """``--psf-sigma``: one length for all (``40um``, ``2px``), or per element (``Fe=40um,Ca=5px``).

    Returns ``{name or "*": (unit, value)}`` with unit ``"um"`` or ``"px"``;
    pixel lengths need no pixel size.
    """
    return _parse_per_element(text, "--psf-sigma", _parse_sigma_length, "40um")


def _parse_gain_option(text):
    """``--gain``: one effective gain for every fitted map (``6e-5``), or per element (``Fe=6e-5,Cr=4.3e-5``).

    Returns ``{name or "*": gain}``, each gain a positive, finite number of map units per count
    (:func:`xrfgpu.front_door.effective_counts`).
    """
    from ._validate import check_positive_finite

    def number(value, what):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{what} {value.strip()!r} is not a number (map units per count, e.g. 6e-5)") from None
        return check_positive_finite(number, what, "map units per count")

    return _parse_per_element(text, "--gain", number, "6e-5")


def _entry_key(name, entries, option):
    """The key of ``entries`` (an option's NAME=VALUE pairs; ``"*"`` aside) that names map ``name``, or None.

    Exact, then as :func:`xrfgpu.io.match_name` finds element names (``Fe`` for ``Fe_K``).

    Raises
    ------
    KeyError
        ``name`` matches several entries (ambiguous).
    """
    from .io import match_name

    named = [key for key in entries if key != "*"]
    if name in named:
        return name
    if not named:
        return None
    try:
        return match_name(name, named, what=f"{option} entry", where=option)
    except KeyError as exc:
        if "ambiguous" in str(exc):
            raise
        return None


def _given_gain(name, image, gains, used):
    """``(gain, kind)``: the ``--gain`` of map ``name`` (its entry, else the one for all), or None: measure it.

    The one-for-all gain applies to fitted maps and scaled integers only: a count map's gain is 1 (the kind
    is :func:`xrfgpu.map_kind.classify_map`'s, as the front door's). An entry named for a count map is passed
    on, and refused there with the reason (:func:`xrfgpu.front_door.effective_counts`) unless it is 1.
    ``kind``: the :class:`xrfgpu.map_kind.MapKind` where the one-for-all gain needed it, else None; the
    caller passes it on (:func:`_map_kind_once`), so no step classifies the map again.
    """
    if not gains:
        return None, None
    key = _entry_key(name, gains, "--gain")
    if key is not None:
        used.add(key)
        return gains[key], None
    if "*" in gains:
        from .map_kind import classify_map

        kind = classify_map(np.asarray(image))
        return (None if kind.is_counts else gains["*"]), kind
    return None, None


def _map_kind_once(image, gain, kind):
    """The map's :class:`xrfgpu.map_kind.MapKind` for every step that takes it, classified at most once per map.

    ``kind`` when already had (:func:`_given_gain`); None where no step would classify the map (gain 1: the
    front door takes any integer map for counts, unclassified); else :func:`xrfgpu.map_kind.classify_map`
    (tens of ms on a 1024² integer map), which the gain, background, σ and restoration steps were each
    running again (:func:`xrfgpu.front_door.effective_counts`).
    """
    if kind is not None or gain == 1.0:
        return kind
    from .map_kind import classify_map

    return classify_map(np.asarray(image))


# --------------------------------------------------------------------------- restoration helpers


def _measured_gain(image, *, with_notes=False, map_kind=None):
    """The map's effective Poisson gain, measured once per map and passed on to every step that needs it.

    :func:`xrfgpu.front_door.effective_counts` on the map as the front door
    validates it (1 for a count map, map units per count for a fitted one).
    With ``with_notes``, also what the record keeps of how it was measured
    (``map_kind``, ``gain_spread`` or ``gain_note``). ``map_kind``: the map's
    :class:`xrfgpu.map_kind.MapKind` if already had (:func:`_map_kind_once`).
    """
    import array_api_compat.numpy as xnp

    from ._validate import as_image
    from .front_door import effective_counts

    _, gain, notes = effective_counts(as_image(np.asarray(image), xp=xnp), xp=xnp, map_kind=map_kind)
    if not with_notes:
        return gain
    return gain, {key: value for key, value in notes.items() if key in _GAIN_KEYS}


def _estimate_background(image, gain, map_kind=None):
    """Background for ``--background auto``, in the map's units: the one :func:`xrfgpu.restore` estimates.

    :func:`xrfgpu.front_door.background_from_map`: on a count map the library's
    estimator; on a fitted or normalised map (PyXRF, MAPS, HXN) the same
    estimator in effective counts (map / measured ``gain``), multiplied back, so
    the command line restores such a map as ``xrfgpu.restore(map)`` does.
    Returns ``(value, how it was obtained)``. ``map_kind``: as :func:`_measured_gain`.
    """
    from .front_door import background_from_map

    value, source = background_from_map(np.asarray(image), return_source=True, gain=gain, map_kind=map_kind)
    return value, f"xrfgpu.front_door.background_from_map: {source}"


def _resolve_device(device, image):
    try:
        from .device import resolve_device, to_compute
    except ImportError:  # pragma: no cover - device module ships with the package
        if device == "gpu":
            raise RuntimeError("--device gpu: this xrfgpu has no GPU support module") from None
        return "cpu", (lambda a, where: a)
    return resolve_device(device, image), to_compute


def _backend_info(where):
    info = {"device": where, "namespace": "cupy" if where == "gpu" else "numpy"}
    if where == "gpu":
        try:
            from .device import gpu_status

            info["gpu"] = gpu_status()
        except Exception:  # pragma: no cover
            pass
    return info


# what the record keeps of the map's effective gain (xrfgpu.restore's info): the number restore(map, gain=)
# takes to reproduce the run, the kind of map, and how the gain was measured
_GAIN_KEYS = ("gain", "map_kind", "gain_spread", "gain_note")


def _run_method(method, image, sigma_px, *, background, gain, options, progress, label, map_kind=None, psf=None):
    """Restore one map through the front door :func:`xrfgpu.restore`; returns (array, details dict).

    Without ``--iterations`` RL stops by the front door's rule (cross-validation,
    scaled by ``--goal`` when σ was estimated); with it, exactly that many.
    ``sigma_px`` is a float, or with ``--psf-auto`` the
    :class:`xrfgpu.psf.SigmaEstimate` of :func:`xrfgpu.front_door.sigma_from_map`,
    which the front door scales by the goal as it scales its own estimate.
    ``gain`` is the map's effective gain (:func:`_measured_gain`), not measured again; None: the front door
    measures it. ``map_kind``: the map's kind, not classified again (:func:`_map_kind_once`). ``psf``: a PSF
    array restored with instead of ``sigma_px`` (the ellipse of a given σ on pixels that are not square).
    """
    from .front_door import restore
    from .lost_lines import LostScanLinesWarning
    from .row_offset import ScanMisregistrationWarning

    kwargs = {}
    if method == "wiener" and options.get("balance") is not None:
        kwargs["balance"] = options["balance"]
    if method in ("tikhonov", "fista") and options.get("lam") is not None:
        kwargs["lam"] = options["lam"]
    if method in ("blind", "blind-rl") and options.get("kernel_size") is not None:
        kwargs["kernel_size"] = int(options["kernel_size"])
    if options.get("mask") is not None:
        kwargs["mask"] = options["mask"]
    n = options.get("iterations")  # FISTA without it: the front door's cross-validated count
    if method in ("rl", "fista") and n and progress.enabled:
        kwargs["callback"] = lambda it, *_: progress.iteration(label, it, n)
    sigma = None if method in ("blind", "blind-rl") or psf is not None else sigma_px
    if psf is not None and method not in ("blind", "blind-rl"):
        kwargs["psf"] = psf
    # the lost lines and the line offset were said by the caller (restore's loop), once per map
    with (_sigma_warnings() as sigma_messages, _collected_warnings(LostScanLinesWarning),
          _collected_warnings(ScanMisregistrationWarning)):
        out, info = restore(image, method=method, sigma=sigma, background=background, num_iter=n, gain=gain,
                            goal=options.get("goal", DEFAULT_GOAL), return_info=True, map_kind=map_kind, **kwargs)
    details = {key: info[key] for key in ("iterations", "stop", "stop_note", "kernel_size", "cv_iterations",
                                          "cv_drop_tolerance",
                                          *CV_SPLIT_KEYS, "accelerate", "iteration_scale", "negative_fraction_clipped",
                                          "negative_fraction_restored", "restored_min", "restoration_dtype",
                                          *_GAIN_KEYS)
               if info.get(key) is not None}
    details.update({key: info[key] for key in GOAL_GUARD_KEYS if key in info})  # the goal's guard, None kept
    details.update({key: info[key] for key in CAUTION_KEYS if key in info})  # the front door's caution
    if info.get("caution_applied"):  # the σ it restored with (the record's PSF says it)
        details["sigma_px"] = float(info["sigma"])
        if "sigma_u" in info:
            details.update(sigma_u_px=float(info["sigma_u"]), sigma_v_px=float(info["sigma_v"]))
    if method in ("blind", "blind-rl") and info.get("sigma") is not None:
        details["sigma_px"] = float(info["sigma"])
    for key in ("balance", "lam"):
        if key in kwargs:
            details[key] = kwargs[key]
    # the weight "auto" chose for Wiener or Tikhonov, its rule and the noise it read
    details.update({key: info[key] for key in ("balance", "lam", "balance_rule", "lam_rule", "noise_variance",
                                               "noise_band", "balance_bound", "lam_bound")
                    if key in info and key not in details})
    details.update({k: v for k, v in _method_defaults(method).items() if k not in details})
    if sigma_messages:  # the caller prints them in one line each, naming the map
        details["warnings"] = sigma_messages
    return out, details


def _tiled_fista_count(image, psf, background, gain, *, lam, mask, details):
    """FISTA's count for ``--tile`` without ``--iterations``: the whole map's count by the front door's own rule
    (:func:`xrfgpu.front_door.fista_iteration_count` on its effective counts), recorded in ``details``;
    fista()'s own default where a fitted map's gain is unknown."""
    from .front_door import fista_iteration_count

    if gain is None:  # a flat fitted map: no effective counts to split
        return _DEFAULT_ITER["fista"]
    b = background / gain if not hasattr(background, "shape") else np.asarray(background, np.float64) / gain
    details["stop"] = "cv"
    return fista_iteration_count(np.asarray(image, dtype=np.float64) / gain, psf, background=b, gain=gain, lam=lam,
                                 mask=mask, record=details)


def _method_defaults(method):
    """The library defaults a run of ``method`` used where no option was given, for the record."""
    import inspect

    from .fista import DEFAULT_LAM_RULE, fista
    from .wiener import tikhonov, wiener

    function, keys = {"wiener": (wiener, ("balance", "regularizer")), "tikhonov": (tikhonov, ("lam", "order")),
                      "fista": (fista, ("nonneg",))}.get(method, (None, ()))
    defaults = {k: inspect.signature(function).parameters[k].default for k in keys} if function else {}
    if method == "fista":  # lam=None: a fraction of the map's largest value above the background
        defaults["lam"] = DEFAULT_LAM_RULE
    return defaults


def _missing_pixels(image, mask_path, what, *, method):
    """``(image, weights or None, lost lines)``: NaN pixels and the ``--mask`` file's zeros are missing data.

    Without ``--mask``, whole lines of zeros beside lines with no zero are lost scan lines
    (:func:`xrfgpu.lost_lines.find_lost_lines`, as :func:`xrfgpu.restore` reads them) and missing too, except
    for the blind methods, which take no missing pixels and restore them as data; the third item is the
    :class:`xrfgpu.lost_lines.LostLines` found (false when none). Missing pixels get their nearest measured pixel
    (:func:`xrfgpu.front_door.filled_for_estimators`), which only the gain,
    background and σ estimators see: the solvers leave them out through the
    weights (``mask=`` of :func:`xrfgpu.restore`).
    """
    import array_api_compat.numpy as xnp  # its asarray takes device= on NumPy 1.x too

    from .io import MapFileError
    from .lost_lines import LostLines, find_lost_lines, without_lost_lines

    if np.iscomplexobj(image):
        raise MapFileError(f"{what} is complex ({image.dtype}); element maps are real numbers")
    missing = np.isnan(image)
    weights = None
    if mask_path is not None:
        masks = _read_maps(mask_path)
        if len(masks) != 1:
            raise MapFileError(f"mask {str(mask_path)!r} holds {len(masks)} maps; give one map of weights")
        weights = np.asarray(next(iter(masks.maps.values())), dtype=np.float64)
        if weights.shape != image.shape:
            raise MapFileError(f"mask {str(mask_path)!r} has shape {weights.shape}, {what} has {image.shape}")
        if not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.max() > 1:
            raise MapFileError(f"mask {str(mask_path)!r} must hold weights in [0, 1] (1 = measured, 0 = missing)")
    infinite = np.isinf(image)
    if np.any(infinite):
        # refused where it would be read; at a pixel the mask calls missing (map / I0 at I0 = 0) it is missing
        if weights is None or np.any(infinite & (weights > 0)):
            raise MapFileError(f"{what} contains infinite values at pixels not marked missing; mark them with "
                               "--mask (weight 0) or as NaN")
        missing = missing | infinite
    lost = LostLines()
    if mask_path is None:  # a mask given says which pixels are missing
        lost = find_lost_lines(np.where(missing, 0.0, image), None if not missing.any() else (~missing).astype(float),
                               xp=xnp)
        if lost and method in ("rl", "fista", "wiener", "tikhonov"):
            weights = np.asarray(without_lost_lines(None, lost, image.shape, xp=xnp, like=np.zeros(1)))
    if weights is None and not missing.any():
        return image, None, lost
    if method not in ("rl", "fista", "wiener", "tikhonov"):
        raise MapFileError(f"{what} has missing pixels (NaN, --mask, or a --normalize scaler ≤ 0): rl, fista, "
                           "wiener and tikhonov restore them, with --tile too")
    weights = (np.ones(image.shape) if weights is None else weights) * ~missing
    if not np.any(weights > 0):
        raise MapFileError(f"{what}: every pixel is missing (NaN or mask 0)")
    filled = image.astype(np.float64 if is_float64(image.dtype) else np.float32, copy=True)
    filled = np.asarray(filled_for_estimators(filled, weights, xp=xnp))
    return filled, weights.astype(np.float32), lost



def _rl_iterations(image, psf, background, iterations, *, gain, goal=DEFAULT_GOAL, sigma_estimated=False,
                   map_kind=None, mask=None):
    """The whole-map RL question for a tiled run, asked of the front door itself.

    Returns ``(map, background, gain, iterations, stop, cross-validated count or
    None, notes)`` with the map and background in effective counts
    (:func:`xrfgpu.front_door.effective_counts`: a count map unchanged, a
    fitted map divided by its effective Poisson gain ``gain``, measured once
    per map by :func:`_measured_gain`, or here when None; ``notes`` says what
    was clipped) and the count :func:`xrfgpu.restore` would use
    (:func:`xrfgpu.front_door.rl_iteration_count`: ``--iterations``, else
    cross-validation times the goal's factor when σ was estimated), so the
    tiles iterate as the whole map does. ``mask``: the map's weights where it has missing pixels
    (:func:`_missing_pixels`; ``image`` then has them filled for the estimators, as the front door fills them).
    """
    import array_api_compat.numpy as xnp

    from ._validate import as_image
    from .front_door import effective_counts, rl_iteration_count

    y, gain, notes = effective_counts(as_image(np.asarray(image), xp=xnp), xp=xnp, gain=gain, map_kind=map_kind)
    b = background / gain
    stop = "fixed" if iterations else "cv"
    # notes also receive the goal's guard record (GOAL_GUARD_KEYS), as restore's info does
    n, cv_count = rl_iteration_count(y, psf, background=b, gain=gain, num_iter=iterations or None, rule=stop,
                                     goal=goal, sigma_estimated=sigma_estimated, accelerate=True, record=notes,
                                     mask=mask)
    return np.asarray(y), b, gain, n, stop, cv_count, notes


def _run_tiled(method, image, sigma_px, *, background, gain, options, tile, scheduler, progress, label,
               map_kind=None, elliptical=None, sigma_interval=None):
    """``--tile``: the algorithm of the whole-map run, computed in Dask tiles; returns (array, details).

    RL runs :func:`xrfgpu.dask_rl.richardson_lucy` (accelerated, whole-map
    step lengths and iteration count: the whole-map iteration to rounding);
    Wiener, Tikhonov and FISTA run :func:`xrfgpu.dask.restore` (halo tiles,
    whole-map ``lam``), equal to the whole map within 1e-4 of its maximum. ``elliptical``: (σu, σv, ρ) of an
    elongated spot found by ``--psf-auto`` (px, after the goal's scale), restored with that ellipse.
    ``sigma_interval``: the estimate's σ interval (px), for the front door's caution
    (:func:`xrfgpu.front_door.caution_sigma`), applied as the whole map applies it.
    """
    from .psf import gaussian_for_map

    if elliptical is None:
        h = np.asarray(gaussian_for_map(float(sigma_px), image.shape))  # the front door's PSF for σ
    else:  # (σu, σv, ρ) of an elongated spot (--psf-auto): the front door's ellipse
        sigma_u, sigma_v, rho = elliptical
        h = np.asarray(gaussian_for_map(sigma_u, image.shape, sigma_v=sigma_v, rho=rho))
    client = None
    if scheduler != "local":
        from distributed import Client

        client = Client(scheduler)
    try:
        details = {"tile": tile, "scheduler": scheduler}
        if method == "rl":
            from .dask_rl import exact_halo, richardson_lucy

            with (contextlib.nullcontext() if options.get("iterations")
                  else progress.stage(f"{label}: iteration count by cross-validation (whole map)")):
                counts, b, gain, n, stop, cv_count, notes = _rl_iterations(
                    image, h, background, options.get("iterations"), gain=gain, goal=options.get("goal", DEFAULT_GOAL),
                    sigma_estimated=bool(options.get("sigma_estimated")), map_kind=map_kind, mask=options.get("mask"))
                if options.get("sigma_estimated") and stop == "cv":  # the front door's caution, as restore applies it
                    from .front_door import caution_record, caution_sigma

                    careful = caution_sigma(cv_count, float(sigma_px), sigma_interval)
                    details.update(caution_record(cv_count, sigma_px, careful, n))
                    if careful is not None:
                        shrink = careful / float(sigma_px)
                        if elliptical is None:
                            h = np.asarray(gaussian_for_map(careful, image.shape))
                        else:
                            h = np.asarray(gaussian_for_map(elliptical[0] * shrink, image.shape,
                                                            sigma_v=elliptical[1] * shrink, rho=elliptical[2]))
                            details.update(sigma_u_px=elliptical[0] * shrink, sigma_v_px=elliptical[1] * shrink)
                        details["sigma_px"] = careful
                        notes = {key: v for key, v in notes.items() if key not in GOAL_GUARD_KEYS}
                        counts, b, gain, n, stop, cv_count, more = _rl_iterations(
                            image, h, background, None, gain=gain, goal=options.get("goal", DEFAULT_GOAL),
                            sigma_estimated=False, map_kind=map_kind, mask=options.get("mask"))
                        notes.update(more)
            callback = (lambda it: progress.iteration(label, it, n)) if progress.enabled else None
            out = richardson_lucy(counts, h, tile=tile, num_iter=n, background=b, accelerate=True,
                                  scheduler="threads" if client is None else None, callback=callback,
                                  mask=options.get("mask"))
            if gain != 1.0:
                out = out * gain  # back from effective counts, as the front door does
            if cv_count is not None:
                # the goal's factor, as the whole-map record says (the guard may run fewer: its own keys)
                details.update(cv_iterations=cv_count, iteration_scale=1.0 if details.get("caution_applied") else
                               goal_factors(options.get("goal", DEFAULT_GOAL),
                                            sigma_estimated=bool(options.get("sigma_estimated")))[1])
                details.update({key: notes[key] for key in GOAL_GUARD_KEYS if key in notes})
            details.update({key: notes[key] for key in CV_SPLIT_KEYS if key in notes})  # the split, if CV ran
            missing = options.get("mask") is not None or bool(np.isnan(np.asarray(counts)).any())
            details["restoration_dtype"] = _restoration_dtype(np.asarray(counts).dtype)
            details.update(iterations=n, stop=stop, accelerate=True, halo=exact_halo(h.shape, missing_pixels=missing),
                           tiling="xrfgpu.dask_rl: every iteration in tiles, whole-map Biggs-Andrews step")
            if notes.get("negative_fraction_clipped"):  # recorded as the whole-map run records it
                details["negative_fraction_clipped"] = notes["negative_fraction_clipped"]
            details.update({key: v for key, v in {"gain": gain, **notes}.items() if key in _GAIN_KEYS})
        else:
            import array_api_compat.numpy as xnp

            from ._validate import as_image
            from .dask import restore as dask_restore
            from .front_door import GainNotMeasurableError, effective_counts

            if gain is not None:
                fitted = gain != 1.0
            else:
                map_kind = _map_kind_once(image, gain, map_kind)  # classified once, passed on below
                fitted = not map_kind.is_counts
            try:  # the map's gain and kind, recorded as the whole map's run (and tiled RL) records them
                _, record_gain, gain_notes = effective_counts(as_image(np.asarray(image), xp=xnp), xp=xnp, gain=gain,
                                                              map_kind=map_kind)
            except GainNotMeasurableError:  # a flat fitted map: no gain to record, as before
                record_gain, gain_notes = None, {}
            if record_gain is not None:
                details.update({key: v for key, v in {"gain": record_gain, **gain_notes}.items()
                                if key in _GAIN_KEYS})
            negative = float(np.mean(image < 0)) if fitted else 0.0
            if negative > 0:  # a fitted map's negative values are set to 0, as the front door does for the whole map
                image = np.clip(image, 0.0, None)
                details["negative_fraction_clipped"] = negative
            kwargs = {"background": background}
            # map units per effective count, as the whole map's run takes it; None for a fitted map whose gain
            # cannot be measured
            unit = gain if gain is not None else record_gain if fitted else 1.0
            if method == "fista":
                if options.get("iterations"):
                    details["stop"] = "fixed"  # as the whole map's run records it
                kwargs["num_iter"] = options.get("iterations") or _tiled_fista_count(
                    image, h, background, unit, lam=options.get("lam"), mask=options.get("mask"), details=details)
            if method == "wiener" and options.get("balance") is not None:
                kwargs["balance"] = options["balance"]
            if method in ("tikhonov", "fista") and options.get("lam") is not None:
                kwargs["lam"] = options["lam"]
            # the whole map (front door) applies λ to the effective counts map / gain; here the map is in its
            # own units, where FISTA's L1 term needs λ × gain for the same solution (Tikhonov's quadratic
            # term scales with the data term, so its λ carries over unchanged)
            weight_key = {"wiener": "balance", "tikhonov": "lam"}.get(method)
            if weight_key is not None and weight_key not in kwargs:
                # "auto": the whole map's weight, given to every tile and recorded (xrfgpu.dask would find the
                # same number, unrecorded)
                from .wiener import auto_weight

                # on the effective counts, as the whole map's run finds it (their mean count is their noise where
                # the spectrum cannot give it); in the map's own units where its gain is unknown
                scale = unit if unit is not None else 1.0
                chosen = auto_weight(method, np.asarray(image, np.float64) / scale, h,
                                     background=(background / scale if not hasattr(background, "shape")
                                                 else np.asarray(background, np.float64) / scale),
                                     mask=options.get("mask"), counts=True if unit is not None else None)
                kwargs[weight_key] = chosen.weight
                details[f"{weight_key}_rule"] = "auto: discrepancy principle (xrfgpu.filter_weight)"
                details["noise_variance"] = chosen.noise_variance * scale * scale
                details["noise_band"] = chosen.noise_band
                details[f"{weight_key}_bound"] = chosen.bound
            solver_kwargs = dict(kwargs)
            if method == "fista" and "lam" in kwargs and fitted:
                solver_kwargs["lam"] = kwargs["lam"] * (unit if unit is not None
                                                        else _measured_gain(image, map_kind=map_kind))
            # missing pixels: the weights of _missing_pixels (the image has them filled for the estimators only)
            lazy = dask_restore(image, h, method, tile=tile, mask=options.get("mask"), **solver_kwargs)
            with progress.stage(f"{label}: {method} in tiles of {tile}"):
                out = lazy.compute(scheduler="threads") if client is None else client.compute(lazy).result()
            details.update({k: v for k, v in kwargs.items() if k != "background"})
            if "num_iter" in details:
                details["iterations"] = details.pop("num_iter")
            details["tiling"] = "xrfgpu.dask.restore: halo tiles (dask.array.map_overlap, reflect)"
            details["restoration_dtype"] = _restoration_dtype(np.asarray(image).dtype)
            details.update({k: v for k, v in _method_defaults(method).items() if k not in details})
    finally:
        if client is not None:
            client.close()
    return out, details


def _run_joint(inputs, guide, iterations, where, to_compute, quiet):
    """``restore --joint``: all maps through :func:`xrfgpu.joint.joint_richardson_lucy`.

    Returns (restored maps by name, per-element details, the joint record).
    """
    import inspect

    from ._backend import to_numpy
    from .front_door import _psf_for
    from .io import match_name
    from .joint import JointFallbackWarning, joint_richardson_lucy
    from .stopping import cv_iterations

    if len(inputs) < 2:
        raise click.UsageError("--joint needs at least two element maps")
    names = [item[0] for item in inputs]
    index = "auto" if guide is None else names.index(match_name(guide, names, what="--guide element",
                                                                  where="the selected maps"))
    # the automatic guide is chosen among the element maps when the file also holds other channels
    # (MAPS: scatter s_i/s_e/s_a, total fluorescence TFY, the fitted background Bkgnd)
    elements = [i for i, name in enumerate(names) if _is_element_map(name)]
    among = elements if guide is None and 0 < len(elements) < len(names) else None
    # with --psf-auto the guide is the map of the narrowest PSF: a σ flagged uncertain (a map with no σ
    # information reads σ at the estimator's floor) would make a noise-flat map the guide, so the automatic
    # guide is chosen among the maps whose σ was not flagged, where there are any
    pool = among if among is not None else list(range(len(names)))
    trusted = [i for i in pool if inputs[i][8]]
    uncertain = [names[i] for i in pool if not inputs[i][8]]
    if guide is None and trusted and uncertain:
        among = trusted
    stack = np.stack([item[1] for item in inputs])
    # missing pixels (NaN, --mask, a --normalize scaler ≤ 0): each map's weights (1 for a complete map); the
    # maps hold them filled for the estimators, and the joint likelihoods leave them out
    mask = None
    if any(item[7] is not None for item in inputs):
        mask = np.stack([item[7] if item[7] is not None else np.ones(stack.shape[1:]) for item in inputs])
    # fitted maps may hold small negative values (fit noise); RL models counts, so they are clipped at 0
    # as the front door clips them for a single map, and the clipped fraction is recorded
    clipped = [float(np.mean(m < 0)) for m in stack]
    if any(clipped):
        stack = np.clip(stack, 0.0, None)
    work = to_compute(stack, where)
    psfs = []
    import array_api_compat.numpy as xnp  # the array-API form of NumPy (plain numpy lacks isdtype before 2.0)

    for name, item in zip(names, inputs):
        try:
            psfs.append(_psf_for(item[2], stack[0], xp=xnp))
        except ValueError as exc:  # a σ the map cannot hold: which map's (the loop above is done with them)
            raise ValueError(f"map {name!r}: {exc}") from None
    if not quiet and isinstance(work, np.ndarray):
        from . import _host_kernels

        engine = _host_kernels.status()
        if engine["state"] == "not built":  # the first joint run on this machine: say why it pauses
            click.echo(f"building the CPU engine of the joint prior (once per machine, about 10 s; cached in "
                       f"{engine['cache_dir']})", err=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", JointFallbackWarning)
        try:
            out, info = joint_richardson_lucy(work, psfs, guide=index, background=[item[3] for item in inputs],
                                              num_iter=iterations, guide_iter=iterations, return_info=True,
                                              gain=[item[5] for item in inputs],  # measured once per map, or None
                                              map_kind=[item[6] for item in inputs],  # classified once, or None
                                              guide_among=among, mask=mask)
        except ValueError as exc:  # the library counts maps; the command line names them
            message = str(exc)
            for i, name in enumerate(names):
                message = message.replace(f"map {i} of the stack", f"map {name!r}")
            raise ValueError(message) from None
    for w in caught:
        text = str(w.message)
        if info.get("guide") is not None:  # the library counts maps; the command line names them
            text = text.replace(f"(map {info['guide']} as the guide)", f"({names[info['guide']]} as the guide)")
        _warn(quiet, text)
    out = to_numpy(out)
    restored, per_element = {}, {}
    for i, (name, _, _, bg, bg_how, *_) in enumerate(inputs):
        restored[name] = out[i]
        # the library's record adds the map's kind, its gain (fitted maps: restored in effective counts),
        # the weight λ and the stop with how each was chosen; the background stays the one given to it
        per_element[name] = {"background": bg, "background_how": bg_how,
                             **{k: v for k, v in info["per_map"][i].items() if v is not None and k != "background"}}
        measured_here = inputs[i][9]  # how the command line measured this map's gain (or that --gain gave it)
        if measured_here:  # the library was handed that gain and calls it "given (gain=)": say how it was had
            if "gain_note" not in measured_here:
                per_element[name].pop("gain_note", None)
            # how it was measured (the gain itself and the map's kind are the library's record already)
            per_element[name].update({k: v for k, v in measured_here.items() if k in ("gain_spread", "gain_note")})
        if clipped[i]:
            per_element[name]["negative_fraction_clipped"] = clipped[i]
        # the guide and a map restored alone (fallback, or weight 0 chosen) run the front door's accelerated RL;
        # a guided map runs the joint prior's plain EM (xrfgpu.joint: "the guide accelerated, the weak map plain")
        per_element[name]["accelerate"] = per_element[name].get("role") != "guided"
    record = {k: v for k, v in info.items() if k != "per_map"}
    record["guide"] = names[info["guide"]]
    record["guide_passed_over"] = {names[i]: why for i, why in info["guide_passed_over"].items()}
    # the cross-validation's splits (each map's weight λ, and its count without --iterations): the library's own
    # defaults, which this command does not change: folds of binomial halves drawn from default_rng(seed), and the
    # guide's (and each map restored alone's) stop by xrfgpu.stopping.cv_iterations with that seed and holdout
    joint_defaults = inspect.signature(joint_richardson_lucy).parameters
    record.update(cv_split_seed=joint_defaults["seed"].default, cv_folds=joint_defaults["cv_folds"].default,
                  cv_holdout_fraction=inspect.signature(cv_iterations).parameters["holdout"].default,
                  restoration_dtype=_restoration_dtype(stack.dtype))
    # the library keys its per-map entries by index; the command line names the maps
    for key, inner in (("guide_evidence", "smoothing_px"), ("reweight", "eps")):
        entry = record.get(key)
        if isinstance(entry, dict) and isinstance(entry.get(inner), dict):
            entry[inner] = {(names[k] if isinstance(k, int) and 0 <= k < len(names) else k): v
                            for k, v in entry[inner].items()}
    if among is not None:
        record["guide_chosen_among"] = [names[i] for i in among]
    if guide is None and trusted and uncertain:
        record["guide_not_among_uncertain_sigma"] = uncertain
    return restored, per_element, record


def _constant_maps(maps):
    """``{name: value}`` of the maps whose every pixel holds one finite value (a NaN pixel is missing, not constant).

    A map with fewer than 2 pixels along a side is not a map, constant or not: it is left to the restoration's
    own refusal, which says so."""
    out = {}
    for name, image in maps.items():
        image = np.asarray(image)
        if image.ndim != 2 or min(image.shape) < 2:
            continue
        first = image.flat[0]
        if np.isfinite(first) and np.all(image == first):
            out[name] = float(first)
    return out


def _constant_words(value):
    """"all zeros" or "constant (every pixel 0.5)", for messages and the record."""
    return "all zeros" if value == 0 else f"constant (every pixel {value:g})"


def _written_as(value):
    """How a constant map is written: "zeros", or "it is"."""
    return "zeros" if value == 0 else "it is"


def _refuse_joint_without_maps_to_restore(constant_maps, selected, guide):
    """``--joint`` leaves the maps that are all zeros or constant out: refuse, saying so, a ``--guide`` that names
    one of them (it read "not found") and a selection of ``selected`` maps that leaves fewer than two."""
    from .io import match_name

    if guide is not None:
        try:
            key = match_name(guide, list(constant_maps), what="--guide element", where="the selected maps")
        except KeyError:
            key = None
        if key is not None:
            raise click.UsageError(f"--guide {guide!r}: map {key!r} is {_constant_words(constant_maps[key])}, with "
                                   "no edges to guide by; choose another map, or leave --guide out")
    if constant_maps and selected - len(constant_maps) < 2:
        one = len(constant_maps) == 1
        raise click.UsageError(
            f"--joint needs at least two element maps to restore, and {len(constant_maps)} of the {selected} "
            f"selected {'is' if one else 'are'} all zeros or constant ({', '.join(constant_maps)}), written as "
            f"{'it is' if one else 'they are'}")


def _is_element_map(name):
    """Whether a map's name reads as an element or an element's line ("Fe", "Fe_K", "Pt_L", "Ca-Ka"), not
    another channel of a fitted file ("TFY", "Bkgnd", "s_e", "ROI3", "i0")."""
    try:
        _line_of_map(str(name).strip())
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- the command group

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# `restore --method blind` warns when more than this share of the restored pixels is below 0
BLIND_NEGATIVE_WARN_FRACTION = 0.01
# `psf edge` warns when σ's standard error exceeds this fraction of σ
EDGE_SIGMA_REL_STDERR = 0.25
EDGE_REMEDY = "Use a knife-edge scan, or `xrfgpu psf dot` on an isolated particle"


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="xrfgpu", message="%(prog)s %(version)s")
def cli():
    """Sharper micro-XRF element maps by deconvolution (Richardson-Lucy, Wiener, FISTA, blind L0).

    Lengths take units: 10um, 5 µm, 0.04mm. Run `xrfgpu COMMAND --help` for details.
    """


def main(argv=None) -> int:
    """Run the ``xrfgpu`` command line; returns the exit status (0 success, 1 failure or internal error,
    2 usage or refused input: see :func:`_friendly`)."""
    from .output_safety import overwrite_named

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with overwrite_named("--overwrite"):  # the library's refusals say overwrite=True
            result = cli.main(args=args, prog_name="xrfgpu", standalone_mode=False, obj={"argv": args})
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return result if isinstance(result, int) else 0


# --------------------------------------------------------------------------- restore


@cli.command(context_settings=CONTEXT)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              callback=_no_standard_output("the restored maps are written to a file or folder with their record",
                                           "-o restored.tif", "--json prints the summary on stdout"),
              help="Output file: .tif, .h5, .npz, .npy, .csv (one map), or a folder (one CSV per element); "
                   "not - (standard output).")
@click.option("--method", type=click.Choice(METHODS), default="rl", show_default=True, help="Restoration method.")
@click.option("--psf-sigma", help="Gaussian PSF σ for all elements (40um) or per element (Fe=40um,Ca=50um); "
              "in pixels (2px, Fe=4px) it needs no pixel size.")
@click.option("--psf-file", type=click.Path(path_type=Path), help="TOML/JSON table of σ per element line.")
@click.option("--psf-auto", is_flag=True, help="Estimate σ from each map (xrfgpu.psf.estimate_sigma).")
@click.option("--elongated-spot", "elongated_spot", is_flag=True,
              help="With --psf-auto: also check for an elongated spot and restore with the measured ellipse "
                   "(xrfgpu.restore(elongation=True); off by default: the check can misread a map).")
@click.option("--psf-extrapolate", is_flag=True,
              help="With --psf-file: give lines outside the energies of the table's measured lines the σ of the "
                   "nearest segment extended in emission energy (else refused); recorded per element.")
@click.option("--goal", type=click.Choice(GOALS), default=DEFAULT_GOAL, show_default=True,
              help="With --psf-auto and rl: resolution = 0.9 × the estimated σ and up to twice the cross-validated "
                   "count, as far as the held-out counts allow (one standard error); fidelity = the estimated σ "
                   "and the cross-validated count (the held-out-likelihood stop). A given σ is used as given; "
                   "--joint uses the estimate unscaled.")
@click.option("--pixel-size", help="Scan step with unit, e.g. 10um (default: from the file).")
@click.option("--elements", help="Comma-separated element lines to restore (default all), e.g. Fe-Ka,Ca-Ka.")
@click.option("--background", default="auto", show_default=True, help="Background counts: auto or a number.")
@click.option("--gain", "gain_option",
              help="Effective Poisson gain of fitted maps, map units per count, for all (6e-5) or per element "
                   "(Fe=6e-5,Cr=4.3e-5), used instead of measuring it: e.g. the whole map's gain (in its record) "
                   "for a crop, where no area may show the noise alone. 1 takes an integer map for counts even "
                   "where it reads as scaled integers (xrfgpu.map_kind).")
@click.option("--iterations", type=click.IntRange(min=1, max=MAX_NUM_ITER),
              help="Iterations of rl, fista and blind-rl (default: RL by cross-validation, a fitted map's on its "
                   f"effective counts, 30 where its gain cannot be measured; FISTA by cross-validation too "
                   f"({_FISTA_NUM_ITER} where a fitted map's gain cannot be measured); blind-rl 30; "
                   "at most 10000).")
@click.option("--balance", type=click.FloatRange(min=0.0),
              help="Wiener regularisation weight (default: chosen from each map's own noise by the discrepancy "
                   "principle; the record gives the number).")
@click.option("--lam", type=click.FloatRange(min=0.0),
              help="Tikhonov/FISTA regularisation weight (Tikhonov's default: chosen from each map's own noise, "
                   "as --balance's).")
@click.option("--kernel-size", type=click.IntRange(min=3), help="Blind kernel size in pixels (odd).")
@click.option("--normalize", "normalize", metavar="SCALER", help="Divide maps by this scaler (e.g. i0) first.")
@click.option("--dataset", help="HDF5: PyXRF detector group (detsum, det1) or MAPS dataset (Fitted, NNLS, ROI; "
              "legacy XRF_fits, XRF_roi, XRF_roi_plus; or its path, e.g. MAPS/XRF_roi).")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True)
@click.option("--tile", type=click.IntRange(min=16), help="Restore in tiles of N×N pixels with Dask (the whole-map algorithm; rl, wiener, tikhonov, fista).")
@click.option("--scheduler", default="local", show_default=True,
              help="With --tile: 'local' (threads) or a Dask scheduler address.")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier xrfgpu output (never another file, never an input).")
@click.option("--mask", "mask_path", type=click.Path(dir_okay=False, path_type=Path),
              help="One-map file of weights: 1 = measured, 0 = missing (dead pixel, drop-out, beam dump); "
                   "restored from neighbours. NaN pixels of INPUT are missing too.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--joint", is_flag=True,
              help="rl: restore the maps together; the sharpest map guides the edges of the others (xrfgpu.joint).")
@click.option("--guide", help="With --joint: the guide element (default: among the element maps, the one with the "
                                "smallest PSF σ, then the most counts).")
@_friendly
def restore(input_path, output, method, psf_sigma, psf_file, psf_auto, pixel_size, elements, background,
            iterations, balance, lam, kernel_size, normalize, dataset, device, tile, scheduler, overwrite,
            quiet, as_json, mask_path=None, joint=False, guide=None, goal=DEFAULT_GOAL, psf_extrapolate=False,
            gain_option=None, elongated_spot=False):
    """Restore the element maps of INPUT and write them, with provenance, to OUTPUT.

    \b
    Example:
      xrfgpu restore scan.h5 -o scan_restored.h5 --psf-file psf.toml --pixel-size 10um
    """
    from .io import MapFileError, _check_target, write_maps
    from .provenance import make_record
    from .units import parse_length_um

    t_start = time.perf_counter()
    chosen = [name for name, flag in (("--psf-sigma", psf_sigma), ("--psf-file", psf_file), ("--psf-auto", psf_auto))
              if flag]
    if len(chosen) > 1:
        raise click.UsageError(f"give only one of --psf-sigma, --psf-file, --psf-auto (got {', '.join(chosen)})")
    if not chosen and method not in ("blind", "blind-rl"):
        raise click.UsageError("give the PSF: --psf-sigma 40um, --psf-file psf.toml or --psf-auto")
    if chosen and method in ("blind", "blind-rl"):
        raise click.UsageError(f"--method {method} estimates the PSF of each map itself and would ignore "
                               f"{chosen[0]}; drop it, or restore with that PSF by --method rl")
    if tile is not None and method not in ("rl", "wiener", "tikhonov", "fista"):
        raise click.UsageError(f"--tile works with rl, wiener, tikhonov and fista, not {method}: the blind "
                               "methods estimate the PSF jointly with the whole map; run them without --tile")
    if joint and (method != "rl" or tile is not None):
        raise click.UsageError("--joint works with --method rl and without --tile")
    if guide is not None and not joint:
        raise click.UsageError("--guide needs --joint")
    if scheduler != "local" and ":" not in scheduler:  # else dask.distributed failed inside the first map's run
        raise click.UsageError(f"--scheduler {scheduler!r} is neither 'local' nor a Dask scheduler address "
                               "such as tcp://host:8786")
    typed = click.get_current_context().get_parameter_source("scheduler") == click.core.ParameterSource.COMMANDLINE
    if (scheduler != "local" or typed) and tile is None:  # it was accepted and the whole map ran here, on this machine
        raise click.UsageError("--scheduler runs the tiles of --tile on a Dask cluster; give --tile N, or drop "
                               "--scheduler to restore the whole map here")
    if psf_extrapolate and psf_file is None:
        raise click.UsageError("--psf-extrapolate extends the σ table of --psf-file to lines beyond its "
                               "energies; give --psf-file, or drop --psf-extrapolate")
    if elongated_spot and not psf_auto:  # it was ignored without a word, and the run looked checked for it
        raise click.UsageError("--elongated-spot checks the σ that --psf-auto estimates for an elongated spot; "
                               "give --psf-auto, or drop --elongated-spot")
    _refuse_options_not_used(method, {"--iterations": iterations, "--balance": balance, "--lam": lam,
                                      "--kernel-size": kernel_size})

    # fail early on the output before any work
    inputs = [input_path, psf_file, mask_path]
    _check_target(output, overwrite, inputs)
    maps = _read_maps(input_path, quiet, dataset=dataset, normalize=normalize)
    _check_dataset_option(maps, dataset, input_path)
    _report_skipped(maps, quiet)
    _warn_earlier_outputs(input_path, maps, quiet)
    pixel_y_um = None  # the y (row) step where the input's pixels are not square
    if pixel_size is not None:
        pixel_um = parse_length_um(pixel_size, what="--pixel-size")
        if maps.pixel_size_um and abs(maps.pixel_size_um - pixel_um) > 1e-3 * pixel_um:
            _warn(quiet, f"--pixel-size {pixel_um:g} µm overrides {maps.pixel_size_um:g} µm stored in {input_path}")
        if maps.metadata.get("pixel_size_y_um"):  # one step given: square pixels, said and recorded
            _warn(quiet, f"--pixel-size {pixel_um:g} µm is taken for both axes; the y step "
                         f"{maps.metadata['pixel_size_y_um']:g} µm stored in {input_path} is not used")
            maps.metadata = {k: v for k, v in maps.metadata.items() if k not in ("pixel_size_y_um", "pixel_size_note")}
    elif maps.pixel_size_um:
        pixel_um = maps.pixel_size_um
        pixel_y_um = maps.metadata.get("pixel_size_y_um")
    else:
        pixel_um = None
    wanted = [e.strip() for e in elements.split(",") if e.strip()] if elements is not None else None
    if wanted == []:
        raise click.UsageError(f"--elements {elements!r} names no element; give e.g. Fe-Ka,Ca-Ka or leave it out")
    selected = maps.select(wanted) if wanted else maps

    table, table_pixel, table_model = (None, None, None)
    if psf_file is not None:
        table, table_pixel, table_model = load_psf_table(psf_file)
        if psf_extrapolate and table_model is None:
            raise click.UsageError(f"--psf-extrapolate: PSF file {str(psf_file)!r} has a [lines] table, whose lines "
                                   "are not interpolated in energy; give a [sigma_um] table, or a 'default' line")
        if pixel_um is None and table_pixel is not None:
            pixel_um = table_pixel
    sigma_given = _parse_sigma_option(psf_sigma) if psf_sigma else None
    needs_pixel = psf_file is not None or (sigma_given is not None and any(u == "um" for u, _ in sigma_given.values()))
    if pixel_um is None and needs_pixel:
        raise MapFileError(f"input {str(input_path)!r}: the pixel size is unknown; pass --pixel-size (e.g. 10um), "
                           "or give --psf-sigma in pixels (e.g. 2px)")

    if background == "auto":
        bg_value = "auto"
    else:
        try:
            bg_value = float(background)
        except ValueError:
            raise click.BadParameter(f"{background!r} is neither 'auto' nor a number of counts",
                                     param_hint="--background") from None
        if not math.isfinite(bg_value) or bg_value < 0:
            raise click.BadParameter(f"{background!r} must be a finite, non-negative number of counts",
                                     param_hint="--background")

    try:
        gains_given = _parse_gain_option(gain_option) if gain_option else None
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--gain") from None
    gain_keys_used = set()

    options = {"iterations": iterations, "balance": balance, "lam": lam, "kernel_size": kernel_size, "goal": goal,
               "sigma_estimated": bool(psf_auto)}
    progress = _Progress.for_options(quiet, as_json)
    restored, psf_record, per_element, timings = {}, {}, {}, {}
    # an all-zero map (an element absent from the scan, e.g. MAPS XRF_roi_plus Pt_L) restores to zeros by
    # every method, and a constant one (a fit's floor, a channel filled with one value) to itself: it is
    # written as it is, not restored (a constant map used to stop the whole run, which the library refuses);
    # only a selection of nothing else is refused
    constant_maps = _constant_maps(selected.maps)
    zero_maps = [name for name, value in constant_maps.items() if value == 0]
    if len(constant_maps) == len(selected):
        what = "all zeros" if len(zero_maps) == len(selected) else "all zeros or constant"
        raise MapFileError(f"input {str(input_path)!r}: every selected map is {what} "
                           f"({', '.join(constant_maps)}): there is nothing to restore")
    for name, value in constant_maps.items():
        _warn(quiet, f"{name}: {_constant_words(value)}, nothing to restore; written as {_written_as(value)}")
    if joint:
        _refuse_joint_without_maps_to_restore(constant_maps, len(selected), guide)
    if tile is not None or joint:  # refused before any map is restored, not after the maps before it
        for name, image in selected.maps.items():
            what = f"input {str(input_path)!r}: map {name!r}"
            if name not in constant_maps:
                _missing_pixels(np.asarray(image), mask_path, what, method=method)
    first = next(image for name, image in selected.maps.items() if name not in constant_maps)
    where, to_compute = _resolve_device(device, first)
    n = len(selected)
    joint_inputs, joint_record = [], None
    scan_faults = {}  # map name → the records of its lost scan lines and line offset (lost_lines, row_offset)
    sigma_keys_used = set()
    for k, (name, image) in enumerate(selected.maps.items(), start=1):
        if name in constant_maps:
            if sigma_given:  # its --psf-sigma entry is not a stray one
                try:
                    key = _entry_key(name, sigma_given, "--psf-sigma")
                except KeyError:
                    key = None
                if key is not None:
                    sigma_keys_used.add(key)
            continue
        click.get_current_context().meta["xrfgpu.current_map"] = (input_path, name)  # named in errors
        t0 = time.perf_counter()
        image = np.asarray(image)
        image, options["mask"], lost = _missing_pixels(image, mask_path, f"input {str(input_path)!r}: map {name!r}",
                                                       method=method)
        if lost:
            scan_faults[name] = lost.info_entries(method)
            _warn(quiet, lost.message(name, method=method, mask_option="--mask"))
        line_offset = alternate_row_offset(image, options["mask"])  # as xrfgpu.restore checks it
        if line_offset is not None:
            scan_faults.setdefault(name, {})["alternate_line_offset"] = line_offset.record()
            _warn(quiet, line_offset.message(name, on_command_line=True))
        image = image.astype(np.float64 if is_float64(image.dtype) else np.float32, copy=False)
        # the map's effective gain, measured once and passed on when the background or σ is estimated (the
        # restoration needs it too); otherwise the step that needs it measures it (the restoration, or the
        # joint run for each fitted map)
        gain, kind = _given_gain(name, image, gains_given, gain_keys_used)  # --gain, else measured (or by the step)
        kind = _map_kind_once(image, gain, kind)  # classified once, passed on to every step below
        gain_notes = {"gain_note": "given with --gain"} if gain is not None else {}
        if gain is None and (bg_value == "auto" or psf_auto):
            gain, gain_notes = _measured_gain(image, with_notes=True, map_kind=kind)
        bg = bg_value
        bg_how = "given"
        if bg_value == "auto":
            bg, bg_how = _estimate_background(image, gain, kind)
        elif bg >= np.nanmax(image):  # e.g. counts given for a fitted map in µg/cm²: the result is ~0
            _warn(quiet, f"{name}: --background {bg:g} is at or above every pixel (largest {np.nanmax(image):.4g}): "
                         "nothing is left to restore; give the background in the map's units")
        # PSF for this element
        elliptical = None  # (σu, σv, ρ) px when --psf-auto finds the spot elongated
        if sigma_given is not None:
            key = _entry_key(name, sigma_given, "--psf-sigma")  # a map's own entry wins over "*=" (as --gain's)
            if key is not None:
                (unit, value), source = sigma_given[key], {"how": f"given with --psf-sigma {key}="}
                sigma_keys_used.add(key)
            elif "*" in sigma_given:
                (unit, value), source = sigma_given["*"], {"how": "given with --psf-sigma"}
            else:
                raise click.UsageError(
                    f"--psf-sigma has no σ for map {name!r} (entries: {', '.join(sigma_given)}); give one "
                    "for every restored map, one value for all, or choose the maps with --elements")
            if unit == "px":
                sigma_px, sigma_um = value, (value * pixel_um if pixel_um else None)
                source["unit"] = "px"
            else:
                sigma_um, sigma_px = value, value / pixel_um
        elif table is not None:
            line, entry = psf_for_element(name, table, source=str(psf_file), model=table_model,
                                          extrapolate=psf_extrapolate)
            sigma_um = entry["sigma_um"]
            sigma_px = sigma_um / pixel_um
            source = {"how": f"PSF file {str(psf_file)}", "line": line,
                      **{k2: v for k2, v in entry.items() if k2 != "sigma_um"}}
            if entry.get("reliable") is False:  # `psf blind --map-only` flagged it when it measured it
                _warn(quiet, f"{name}: the σ of {line} in {str(psf_file)!r} ({sigma_um:.3g} µm) was estimated from "
                             "a map and flagged uncertain there; measure the PSF on a dot or an edge (xrfgpu psf "
                             "dot|edge) for a σ to trust")
        elif psf_auto:
            from .front_door import goal_factors, require_side_for_sigma, sigma_from_map

            require_side_for_sigma(np.shape(image), "--psf-sigma (40um with the pixel size, or 2px) or --psf-file "
                                                    "(measured with `xrfgpu psf` on a larger scan)")
            # the front door's own estimate (effective counts, the background restore gets) and the goal's σ scale
            with progress.stage(f"σ fits {progress.render_bar(k - 1, n)} {name}: estimating σ from the map"), \
                    _sigma_warnings() as sigma_warnings:
                est = sigma_from_map(image, background=bg, gain=gain, map_kind=kind, elongation=elongated_spot,
                                     mask=options.get("mask"))
            # an uncertain σ is said once, in a line of its own naming the map (not as a Python warning)
            for text in sigma_warnings:
                _warn(quiet, f"{name}: {text} (on the command line: --psf-sigma or --psf-file)")
            scale = 1.0 if joint else goal_factors(goal, sigma_estimated=True, method=method)[0]
            sigma_px = float(est.sigma) * scale
            sigma_um = sigma_px * pixel_um if pixel_um else None
            source = {"how": "estimated from the map", "estimator": getattr(est, "method", "estimate_sigma"),
                      "sigma_estimated_px": float(est.sigma), "interval_px": est.interval,
                      "reliable": est.reliable, "goal": None if joint else goal, "sigma_scale": scale}
            if sigma_warnings:
                source["warnings"] = sigma_warnings
            if est.details and est.details.get("region"):  # missing pixels: where σ was read
                source["region"] = est.details["region"]
            if est.elongated and joint:  # --joint takes one round σ per map
                source["elongated_not_used"] = est.evidence
                _warn(quiet, f"{name}: the spot is elongated (σu {est.sigma_u:.3g} px, σv {est.sigma_v:.3g} px, "
                             f"ρ {est.rho:+.2f}), but --joint restores with the round σ √(σu σv) "
                             f"{est.sigma:.3g} px; restore without --joint to use the ellipse")
            elif est.elongated:  # an elongated spot: restored with the ellipse
                elliptical = (float(est.sigma_u) * scale, float(est.sigma_v) * scale, float(est.rho))
                source.update(sigma_u_px=elliptical[0], sigma_v_px=elliptical[1], rho=elliptical[2],
                              sigma_u_estimated_px=float(est.sigma_u), sigma_v_estimated_px=float(est.sigma_v),
                              evidence=est.evidence)
        else:
            sigma_px = sigma_um = None
            source = {"how": f"blind ({method})"}
        if pixel_y_um and sigma_px is not None:  # pixels that are not square (the reader warned)
            steps = f"x step {pixel_um:g} µm, y step {pixel_y_um:g} µm"
            if psf_auto or source.get("unit") == "px":  # a σ in pixels is round in pixels, as estimated or given
                source["pixels_not_square"] = f"{steps}: σ in pixels taken as the same along both axes"
                if psf_auto and not elongated_spot:
                    _warn(quiet, f"{name}: pixels are not square ({steps}); the σ estimated in pixels is round, a "
                                 "compromise between the axes: --elongated-spot measures an ellipse, or give σ in µm")
            elif joint:  # one round σ per map: the geometric mean of the two axes' σ in pixels
                sigma_px = math.sqrt(sigma_px * sigma_um / pixel_y_um)
                source["pixels_not_square"] = f"{steps}: --joint restores with the round σ √(σx σy) in pixels"
                _warn(quiet, f"{name}: pixels are not square ({steps}); --joint restores with the round σ "
                             f"{sigma_px:.3g} px, the geometric mean of the two axes")
            elif method not in ("blind", "blind-rl"):
                # σ in µm on a rectangular grid: an ellipse in pixels, σu along the columns (x), σv along the rows
                elliptical = (sigma_px, sigma_um / pixel_y_um, 0.0)
                source.update(sigma_u_px=elliptical[0], sigma_v_px=elliptical[1],
                              pixels_not_square=f"{steps}: σ {sigma_um:g} µm is {elliptical[0]:.4g} px along x and "
                                                f"{elliptical[1]:.4g} px along y")
        if sigma_px is not None and not (sigma_px > 0.05):
            raise ValueError(f"PSF σ for {name!r} is {sigma_px:.3g} px: too small to restore (check units)")
        sig_text = f"σ={sigma_um:.3g} µm ({sigma_px:.3g} px)" if sigma_um else (
            f"σ={sigma_px:.3g} px" if sigma_px else "blind PSF")
        progress.line(f"[{k}/{n}] {name}: {method}, {sig_text}, background {bg:.4g}")
        if joint:  # restored together after the loop
            # (the last: whether σ can be trusted to choose the guide by; an estimate flagged uncertain cannot)
            joint_inputs.append((name, image, sigma_px, bg, bg_how, gain, kind, options.get("mask"),
                                 source.get("reliable", True) is not False, gain_notes))
            psf_record[name] = {"sigma_um": sigma_um, "sigma_px": sigma_px,
                                "fwhm_um": sigma_um * 2.3548200450309493 if sigma_um else None, "source": source}
            # this map's preparation only (gain, background, σ): the maps are restored together below
            timings.setdefault("preparation", {})[name] = round(time.perf_counter() - t0, 4)
            continue
        if tile is not None:
            out, details = _run_tiled(method, image, sigma_px, background=bg, gain=gain, options=options, tile=tile,
                                      scheduler=scheduler, progress=progress, label=name, map_kind=kind,
                                      elliptical=elliptical, sigma_interval=est.interval if psf_auto else None)
        else:
            work = to_compute(image, where)
            has_bar = method in ("rl", "fista") and bool(iterations or method == "fista")
            how = {"rl": "Richardson-Lucy, iterations by cross-validation" if not iterations else "Richardson-Lucy",
                   "blind": "blind L0 kernel and image", "blind-rl": "blind L0 σ, then Richardson-Lucy"}
            quick = has_bar or method in ("wiener", "tikhonov")  # direct filters take well under 2 s
            with (contextlib.nullcontext() if quick else progress.stage(f"{name}: {how.get(method, method)}")):
                # with --psf-auto the estimate itself: the front door applies the goal's σ scale (= sigma_px)
                given_ellipse = None
                if elliptical is not None and not psf_auto:  # a given σ in µm on pixels that are not square
                    from .psf import gaussian_for_map

                    given_ellipse = gaussian_for_map(elliptical[0], np.shape(image), sigma_v=elliptical[1])
                out, details = _run_method(method, work, est if psf_auto else sigma_px, background=bg, gain=gain,
                                           options=options, progress=progress, label=name, map_kind=kind,
                                           psf=given_ellipse)
            for text in details.get("warnings", []):
                _warn(quiet, f"{name}: {text} (on the command line: --method rl with --psf-sigma or --psf-file)")
            negative = details.get("negative_fraction_restored", 0.0)
            if negative > BLIND_NEGATIVE_WARN_FRACTION:  # the blind L0 method has no positivity constraint
                peak = float(np.nanmax(np.asarray(image, dtype=np.float64)))
                share = f", {-details['restored_min'] / peak:.0%} of the map's maximum" if peak > 0 else ""
                _warn(quiet, f"{name}: {negative:.1%} of the restored pixels are below 0 (down to "
                             f"{details['restored_min']:.3g}{share}): the blind L0 method (Pan et al. 2014, as "
                             "the authors' code) has no positivity constraint; use --method blind-rl for maps to "
                             "measure on")
        from ._backend import to_numpy

        out = to_numpy(out)
        if options.get("mask") is not None:  # NaN pixels, --mask zeros, a scaler ≤ 0: restored from neighbours
            details["missing_pixels"] = int(np.count_nonzero(np.asarray(options["mask"]) == 0))
        if "sigma_px" in details and (sigma_px is None or details.get("caution_applied")):
            sigma_px = details["sigma_px"]  # a blind method's σ, or the front door's caution's (--psf-auto)
            sigma_um = sigma_px * pixel_um if pixel_um else None
            if details.get("caution_applied"):
                source.update(caution="restored at the lower end of the σ interval (per_element: caution_reason)",
                              **{k: details[k] for k in ("sigma_u_px", "sigma_v_px") if k in details})
        restored[name] = out
        psf_record[name] = {"sigma_um": sigma_um, "sigma_px": sigma_px,
                            "fwhm_um": sigma_um * 2.3548200450309493 if sigma_um else None, "source": source}
        if gain_notes and "gain" in details:  # the step got the gain from here: say how it was had, not "given"
            details.pop("gain_note", None)
            details.update(gain_notes)
        per_element[name] = {"background": bg, "background_how": bg_how, **details}
        timings[name] = round(time.perf_counter() - t0, 4)

    click.get_current_context().meta["xrfgpu.current_map"] = None  # the joint's errors name their own maps
    if joint:  # minutes on many maps (a weight per map by cross-validation): say so while it runs
        t0 = time.perf_counter()
        with progress.stage(f"joint restoration of {len(joint_inputs)} maps (each map's weight by cross-validation)"):
            restored, per_element, joint_record = _run_joint(joint_inputs, guide, iterations, where, to_compute,
                                                             quiet)
        timings["joint_restoration"] = round(time.perf_counter() - t0, 4)  # all maps together, once
    for name, record in scan_faults.items():  # the whole map, the tiles and the joint run alike
        per_element[name].update(record)
    for key in (sigma_given or {}):  # a typo (F= for Fe=) or an element the input lacks
        if key != "*" and key not in sigma_keys_used:
            _warn(quiet, f"--psf-sigma entry {key!r} matches none of the restored maps ({', '.join(selected.names)})")
    for key in (gains_given or {}):
        if key != "*" and key not in gain_keys_used:
            _warn(quiet, f"--gain entry {key!r} matches none of the restored maps ({', '.join(selected.names)})")
    if constant_maps:  # back in the input's order, as they are, in the restored maps' dtype
        dtype = next(iter(restored.values())).dtype
        restored = {name: restored[name] if name in restored else np.full(selected.shape, constant_maps[name], dtype)
                    for name in selected.maps}
        per_element = {name: per_element[name] if name in per_element else
                       {"skipped": f"{_constant_words(constant_maps[name])}: nothing to restore, written as "
                                   f"{_written_as(constant_maps[name])}"}
                       for name in selected.maps}
    parameters = {"method": method, "background": background, "gain": gain_option, "iterations": iterations,
                  "balance": balance,
                  "lam": lam, "kernel_size": kernel_size, "normalize": normalize, "dataset": dataset,
                  "device": device, "tile": tile, "scheduler": scheduler if tile else None,
                  "pixel_size_um": pixel_um, "boundary": "reflect", "per_element": per_element,
                  "mask": None if mask_path is None else str(mask_path), "mask_file": _file_record(mask_path),
                  "psf_file": _file_record(psf_file),
                  "goal": goal, "psf_extrapolate": psf_extrapolate}
    if joint:
        parameters["joint"] = joint_record
    timings["total"] = round(time.perf_counter() - t_start, 4)
    record = make_record(method=method, parameters=parameters, psf=psf_record, backend=_backend_info(where),
                         input_path=input_path, input_format=maps.metadata.get("format"),
                         elements=list(restored), command=["xrfgpu", *_argv()],
                         timings=timings)
    result = selected.with_maps(restored, pixel_size_um=pixel_um)
    written = write_maps(output, result, provenance=record, overwrite=overwrite, source=inputs)
    summary = {
        "input": str(input_path),
        "output": str(output),
        "files": [str(p) for p in written],
        "method": method,
        "elements": list(restored),
        "shape": list(result.shape),
        "pixel_size_um": pixel_um,
        "psf": psf_record,
        "device": where,
        "seconds": timings,
        "input_sha256": record.get("input_sha256"),
    }
    if joint:
        summary["joint"] = joint_record
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _say(quiet, False, f"restored {len(restored)} map(s) {', '.join(restored)} "
             f"({result.shape[0]}×{result.shape[1]} px) with {method} on {where} in {timings['total']:.2f} s")
        _say(quiet, False, f"wrote {', '.join(str(p) for p in written)}")
    return 0


# the methods that use each of restore's method options (an option given to another method is refused: it
# was recorded as if it had run, with the output identical to a run without it)
_OPTION_METHODS = {
    "--iterations": (("rl", "fista", "blind-rl"), "the iteration count"),
    "--balance": (("wiener",), "the regularisation weight"),
    "--lam": (("tikhonov", "fista"), "the regularisation weight"),
    "--kernel-size": (("blind", "blind-rl"), "the blind kernel's size"),
}


def _refuse_options_not_used(method, given):
    """Refuse, in one line naming it and the method, a method option that ``--method`` would not use.

    Parameters
    ----------
    method : str
        The ``--method`` chosen (:data:`METHODS`).
    given : dict
        Option name (``"--lam"``) to its value, None where not given.

    Raises
    ------
    click.UsageError
        The first option given that ``method`` does not use (exit status 2), naming the methods that
        use it, as ``--guide`` without ``--joint`` is refused.
    """
    for option, value in given.items():
        users, what = _OPTION_METHODS[option]
        if value is not None and method not in users:
            named = users[0] if len(users) == 1 else f"{', '.join(users[:-1])} and {users[-1]}"
            choose = users[0] if len(users) == 1 else f"one of {', '.join(users[:-1])} or {users[-1]}"
            raise click.UsageError(f"--method {method} does not use {option} ({what} of {named}); drop {option}, "
                                   f"or choose {choose}")


def _file_record(path):
    """The record's entry of a ``--mask`` or ``--psf-file`` file, as the input's: ``{"path": absolute, "sha256":
    of its bytes}``, so that a file changed under the same name is seen.

    Parameters
    ----------
    path : Path or None

    Returns
    -------
    dict or None
        None where the option was not given.
    """
    if path is None:
        return None
    from .provenance import sha256_of

    return {"path": str(Path(path).resolve()), "sha256": sha256_of(path)}


def _restoration_dtype(dtype):
    """``"float64"`` or ``"float32"``: the precision a map of ``dtype`` is restored in (float64 stays float64)."""
    return "float64" if is_float64(dtype) else "float32"


def _argv():
    """The arguments this command was run with (for the provenance record)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return list(obj["argv"]) if isinstance(obj, dict) and "argv" in obj else list(sys.argv[1:])


# --------------------------------------------------------------------------- psf


def _pick_map(maps, element, input_path):
    if element:
        name = maps.find(element)
    elif len(maps) == 1:
        name = maps.names[0]
    else:
        raise ValueError(f"input {str(input_path)!r} holds {len(maps)} maps ({', '.join(maps.names)}); "
                         "choose one with --element")
    return name, np.asarray(maps.maps[name], dtype=np.float64)


def _named(path):
    """``path`` itself, or the folder it stands for where it has no name of its own (".", "./", "..")."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.name in ("", "..") else path


def _check_figure_name(figure, option):
    """Only .png, .pdf and .svg figures (:func:`xrfgpu.figures.figure_format`): refused in one line, before any work."""
    from .figures import figure_format
    from .output_safety import UnsafeOutputError

    try:
        figure_format(figure)
    except ValueError as exc:
        raise UnsafeOutputError(f"{option}: {exc}") from None


def _psf_outputs(kind, input_path, output, figure, overwrite):
    source = _named(input_path)  # "." is named after the folder it stands for
    stem = source.with_suffix("").name if source.suffix else source.name
    output = Path(output) if output else Path(f"{stem}_psf.toml")
    figure = Path(figure) if figure else Path(f"{stem}_psf_{kind}.png")
    from .output_safety import check_outputs

    check_outputs([output, figure], [input_path], overwrite=overwrite)
    _check_figure_name(figure, "--figure")
    return output, figure


def _psf_common(func):
    options = [
        click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path)),
        click.option("--pixel-size", help="Scan step with unit, e.g. 5um (default: from the file)."),
        click.option("--element", help="Which map of INPUT to use (default: the only one)."),
        click.option("--line", "line", help="Line name to store in the PSF file (default: the element name)."),
        click.option("-o", "--output", type=click.Path(),
                     callback=_no_standard_output("the PSF table is written to a file, with its fit figure",
                                                  "-o psf.toml", "--json prints σ on stdout"),
                     help="PSF file to write (TOML; default INPUT_psf.toml in the current folder); not - "
                          "(standard output: --json prints the result there)."),
        click.option("--figure", type=click.Path(),
                     callback=_no_standard_output("the fit figure is written to a file", "--figure fit.png",
                                                  "--json prints σ on stdout"),
                     help="Fit figure: .png, .pdf or .svg (default INPUT_psf_<command>.png in the current folder)."),
        click.option("--dataset", help="HDF5 dataset group (see restore)."),
        click.option("--overwrite", is_flag=True),
        click.option("-q", "--quiet", is_flag=True),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.group(context_settings=CONTEXT)
def psf():
    """Measure the PSF from a dot scan, a knife edge, or blindly from a map."""


def _report_psf(kind, name, line, sigma_px, stderr_px, pixel_um, extra, output, figure, fig, overwrite,
                quiet, as_json, table_extra, *, inputs=(), um_per_px=None):
    """Write and say the measured σ. ``um_per_px``: µm per pixel of ``sigma_px`` where the pixels are not
    square (:func:`_measured_length_per_px`); None: ``pixel_um``, the x step, as for square pixels."""
    from .figures import figure_output
    from .psf import FWHM_PER_SIGMA

    scale = um_per_px if um_per_px else pixel_um
    sigma_um = sigma_px * scale if scale else None
    stderr_um = stderr_px * scale if (scale and stderr_px is not None) else None
    entry = {"sigma_um": sigma_um, "stderr_um": stderr_um, "fwhm_um": sigma_um * FWHM_PER_SIGMA if sigma_um else None,
             "method": kind, "map": name, **table_extra}
    if sigma_um is None:
        raise ValueError("the pixel size is unknown, so σ cannot be written in µm; pass --pixel-size (e.g. 5um)")
    # ``line``: already checked by _table_line before the fit
    # the table and its fit figure land together or not at all: a table left by a failed run would be
    # taken for a measurement
    save_psf_table(output, {line: entry}, pixel_size_um=pixel_um, overwrite=overwrite, inputs=inputs,
                   comment=f"PSF measured by xrfgpu {__version__} ({kind}) from map {name!r}",
                   also=[figure_output(fig, figure)])
    result = {"line": line, "method": kind, "sigma_px": sigma_px, "sigma_stderr_px": stderr_px,
              "sigma_um": sigma_um, "sigma_stderr_um": stderr_um,
              "fwhm_um": sigma_um * FWHM_PER_SIGMA, "fwhm_stderr_um": stderr_um * FWHM_PER_SIGMA if stderr_um else None,
              "pixel_size_um": pixel_um, "psf_file": str(output), "figure": str(figure), **extra}
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif not quiet:
        pm = f" ± {stderr_um:.2g}" if stderr_um is not None else ""
        pmf = f" ± {stderr_um * FWHM_PER_SIGMA:.2g}" if stderr_um is not None else ""
        steps = f"{pixel_um:g} µm" if not um_per_px else f"{um_per_px:.4g} µm per px along the measured direction"
        click.echo(f"{line}: σ = {sigma_um:.4g}{pm} µm, FWHM = {sigma_um * FWHM_PER_SIGMA:.4g}{pmf} µm "
                   f"({sigma_px:.3g} px at {steps})")
        for k, v in extra.items():
            click.echo(f"  {k} = {v:.4g}" if isinstance(v, float) else f"  {k} = {v}")
        click.echo(f"wrote {output}, {figure}")
    return 0


def _table_line(line, name):
    """The X-ray line of the PSF table's entry: ``--line``, else map ``name``; checked before the fit."""
    from .psf.model import normalise_line

    try:
        return normalise_line(line.replace("_", "-"))
    except ValueError:
        symbol = re.match(r"[A-Z][a-z]?", str(name))
        example = f"{symbol.group(0)}-Ka" if symbol else "Cr-Ka"  # the map's own element where its name starts with one
        raise ValueError(f"map {name!r} is not named after an X-ray line; say which with --line (e.g. --line "
                         f"{example})") from None


def _load_for_psf(input_path, element, pixel_size, dataset, *, with_unit=False, allow_missing=False, steps=None):
    """(name, image, pixel size in µm) of the map to fit; with ``with_unit`` also its intensity unit
    (:func:`_intensity_unit`, for the fit figure). ``allow_missing``: NaN pixels are passed on (the map-only
    estimate reads σ beside them) instead of refused; infinite values are refused either way. ``steps``: a
    dict that receives ``"y"``, the y (row) step in µm where the input's pixels are not square (not with
    ``--pixel-size``, which gives one step for both axes)."""
    from .io import MapFileError
    from .units import parse_length_um

    maps = _read_maps(input_path, dataset=dataset)
    _check_dataset_option(maps, dataset, input_path)
    _report_skipped(maps, False)
    name, image = _pick_map(maps, element, input_path)
    missing = int(np.sum(np.isinf(np.asarray(image)) if allow_missing else ~np.isfinite(np.asarray(image))))
    if missing:  # the fits model every pixel; said here, naming the file and the map, before any work
        raise MapFileError(f"input {str(input_path)!r}: map {name!r} has {missing} missing pixel"
                           f"{'s' if missing > 1 else ''} (NaN or infinite, e.g. blank CSV cells); a PSF fit needs "
                           "every pixel: crop the scan to a region without them")
    pixel_um = parse_length_um(pixel_size, what="--pixel-size") if pixel_size else maps.pixel_size_um
    if steps is not None:
        steps["y"] = None if pixel_size else maps.metadata.get("pixel_size_y_um")
    if pixel_um is None:  # checked before the fit, which can take seconds
        raise ValueError(f"input {str(input_path)!r}: the pixel size is unknown, so σ cannot be written in µm; "
                         "pass --pixel-size (e.g. 5um)")
    if with_unit:
        return name, image, pixel_um, _intensity_unit(maps, name, image)
    return name, image, pixel_um


def _measured_length_per_px(x_um, y_um, *, angle_deg=None):
    """µm per pixel of a σ measured in pixels on pixels ``x_um`` wide and ``y_um`` tall (y_um None: square).

    A spot round in µm is an ellipse in pixels, σ/x along the columns and σ/y along the rows. Its σ in pixels
    along a direction at ``angle_deg`` from the columns (a knife edge's normal) is
    σ·√(cos²θ/x² + sin²θ/y²), so the µm per pixel there is 1/√(cos²θ/x² + sin²θ/y²); the geometric mean
    √(σu σv) of an elliptical fit (a dot, a kernel) or a round σ read in pixels is σ/√(x y), so √(x y).
    None for square pixels (the x step applies).
    """
    if not y_um or abs(y_um - x_um) <= 0.01 * x_um:
        return None
    if angle_deg is None:
        return math.sqrt(x_um * y_um)
    t = math.radians(angle_deg)
    return 1.0 / math.sqrt((math.cos(t) / x_um) ** 2 + (math.sin(t) / y_um) ** 2)


# `psf dot` warns when the dot's σ exceeds this multiple of the upper end of estimate_sigma's interval for
# the same map: a proper dot scan's σ lies inside that interval (σ 1–4 px on 41 × 45 Poisson scans), rounded
# grains of the HXN maps 4–30× above it (docs/qa_real_maps.md, third pass)
DOT_SIGMA_OVER_MAP_FACTOR = 2.0
# what both of `psf dot`'s warnings (a flat-topped dot, a rounded grain) advise
DOT_REMEDY = "Scan one dot smaller than the spot, or give its size with --dot-diameter"


def _check_dot_against_map_sigma(image, sigma_px, name, pixel_um, extra, quiet):
    """Warn (and record in ``extra``) when the dot's fitted σ lies far above the σ the map's edges give.

    :func:`xrfgpu.front_door.sigma_from_map` (:func:`xrfgpu.psf.estimate_sigma` on the map in effective
    counts) gives an interval of σ; a fitted σ above :data:`DOT_SIGMA_OVER_MAP_FACTOR` × its upper end means
    the "dot" is wider than the spot: a grain, whose Gaussian σ measures the grain. Not made on maps too small
    for the estimator (under ``MIN_SIDE_PX`` a side) or where it fails; ``extra`` then says why.
    """
    from .front_door import sigma_from_map
    from .psf.blind_sigma import MIN_SIDE_PX, SigmaUncertainWarning

    if min(np.shape(image)) < MIN_SIDE_PX:
        extra["map_sigma_check"] = f"not made: the map is under {MIN_SIDE_PX} px a side (estimate_sigma's minimum)"
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SigmaUncertainWarning)  # the interval is what is compared
            estimate = sigma_from_map(np.asarray(image, dtype=np.float64))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        extra["map_sigma_check"] = f"not made: {exc}"
        return
    if estimate.interval is None:
        extra["map_sigma_check"] = "not made: estimate_sigma gave no interval"
        return
    lo, hi = (float(v) for v in estimate.interval)
    extra.update({"map_sigma_um": float(estimate.sigma) * pixel_um,
                  "map_sigma_interval_um": [lo * pixel_um, hi * pixel_um]})
    if sigma_px > DOT_SIGMA_OVER_MAP_FACTOR * hi:
        extra["warning"] = (f"map {name!r}: the dot's σ {sigma_px * pixel_um:.3g} µm ({sigma_px:.3g} px) is "
                            f"{sigma_px / hi:.1f}× the upper end of the σ the map's own edges give "
                            f"({lo:.3g}–{hi:.3g} px, xrfgpu.psf.estimate_sigma): the dot may be a grain larger "
                            f"than the spot, and σ then measures the grain. {DOT_REMEDY}")
        _warn(quiet, extra["warning"])


@psf.command("dot", context_settings=CONTEXT)
@_psf_common
@click.option("--dot-diameter", help="Diameter of the dot with unit (corrects σ for the dot size).")
@click.option("--poisson", is_flag=True, help="Poisson-weighted fit (default ordinary least squares, as the paper).")
@_friendly
def psf_dot(input_path, pixel_size, element, line, output, figure, dataset, overwrite, quiet, as_json,
            dot_diameter, poisson):
    """Fit the bivariate Gaussian g = αh + β to the scan of a small dot (the paper's Fig. 3)."""
    from .figures import dot_fit_figure
    from .psf import fit_dot
    from .units import parse_length_um

    steps = {}
    name, image, pixel_um, unit = _load_for_psf(input_path, element, pixel_size, dataset, with_unit=True, steps=steps)
    line = _table_line(line or name, name)  # before the fit, which can take seconds
    output, figure = _psf_outputs("dot", input_path, output, figure, overwrite)
    dia = parse_length_um(dot_diameter, what="--dot-diameter") if dot_diameter else None
    if dia is not None and _measured_length_per_px(pixel_um, steps["y"]):
        raise click.UsageError(f"--dot-diameter on pixels that are not square (x step {pixel_um:g} µm, y step "
                               f"{steps['y']:g} µm): the dot model is round in pixels; resample the scan to square "
                               "pixels, or fit without --dot-diameter")
    fit = fit_dot(image, pixel_size_um=pixel_um, poisson=poisson, dot_diameter_um=dia)
    se = fit.stderr
    # stderr of √(σu σv) by first-order propagation (σu, σv errors taken as independent)
    s_err = 0.5 * fit.sigma * math.hypot(se.get("sigma_u", 0.0) / fit.sigma_u, se.get("sigma_v", 0.0) / fit.sigma_v)
    p = pixel_um or 1.0
    p_v = steps["y"] or p  # σv is along the rows: the y step where the pixels are not square
    extra = {"sigma_u_um": fit.sigma_u * p, "sigma_v_um": fit.sigma_v * p_v, "rho": fit.rho,
             "sigma_u_stderr_um": se.get("sigma_u", float("nan")) * p,
             "sigma_v_stderr_um": se.get("sigma_v", float("nan")) * p_v}
    if poisson:  # the χ² per degree of freedom of Poisson-weighted residuals: about 1 for a good fit
        extra["reduced_chi2"] = fit.reduced_chi2
    else:  # unweighted least squares: the residuals' variance in the map's units², not a χ² near 1
        extra["residual_variance"] = fit.reduced_chi2
    um_per_px = _measured_length_per_px(p, steps["y"])
    if um_per_px:
        extra["pixels_not_square"] = (f"x step {p:g} µm, y step {steps['y']:g} µm: σu in µm is σu·x, σv is σv·y, "
                                      "σ = √(σu σv) in µm")
    if dia is None:  # is the "dot" larger than the spot? Then the Gaussian's σ measures the dot
        # (round lengths in px, on pixels that are not square at √(x y) µm per px, as σ itself)
        q = um_per_px or p
        from .psf.dot_size import dot_is_resolved, fit_disk_spot

        try:
            disk = fit_disk_spot(image, pixel_um, gaussian_fit=fit)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # the Gaussian fit stands alone
            disk = None
            extra["disk_check"] = f"not made: {exc}"
        if disk is not None:
            extra.update({"disk_diameter_um": disk.diameter * q,
                          "disk_diameter_stderr_um": disk.stderr["diameter"] * q,
                          "disk_sigma_um": disk.sigma * q, "disk_f_statistic": disk.f_statistic})
        if disk is not None and dot_is_resolved(disk):
            extra["warning"] = (f"map {name!r} shows a flat-topped dot (or several), not a point: a disk "
                                f"{disk.diameter * q:.3g} µm across blurred by σ {disk.sigma * q:.3g} µm fits it far "
                                f"better than one Gaussian (F = {disk.f_statistic:.0f}), so σ = {fit.sigma * q:.3g} µm "
                                f"measures the dot, not the spot. {DOT_REMEDY}")
            _warn(quiet, extra["warning"])
        else:  # a rounded grain fits one Gaussian about as well as a spot: compare with the map's own σ
            _check_dot_against_map_sigma(image, fit.sigma, name, q, extra, quiet)
    # on pixels that are not square the figure stays in pixels (one length per pixel would misdraw an axis);
    # the table and the record give µm, each axis with its own step
    fig = dot_fit_figure(image, fit, pixel_size_um=None if um_per_px else pixel_um, title=name, unit=unit,
                         sigma_stderr=s_err)
    table_extra = {"sigma_u_um": fit.sigma_u * p, "sigma_v_um": fit.sigma_v * p_v, "rho": fit.rho}
    return _report_psf("dot", name, line, fit.sigma, s_err, pixel_um, extra, output, figure, fig,
                       overwrite, quiet, as_json, table_extra, inputs=[input_path], um_per_px=um_per_px)


@psf.command("edge", context_settings=CONTEXT)
@_psf_common
@click.option("--angle", type=float, help="Edge-normal direction in degrees (default: found from the map).")
@_friendly
def psf_edge(input_path, pixel_size, element, line, output, figure, dataset, overwrite, quiet, as_json, angle):
    """Fit an erf edge-spread function to a knife-edge scan (the paper's Fig. 4)."""
    from .figures import edge_fit_figure
    from .psf import fit_knife_edge
    from .psf.knife_edge import RESIDUAL_STRUCTURE_Z

    steps = {}
    name, image, pixel_um, unit = _load_for_psf(input_path, element, pixel_size, dataset, with_unit=True, steps=steps)
    line = _table_line(line or name, name)  # before the fit, which can take seconds
    output, figure = _psf_outputs("edge", input_path, output, figure, overwrite)
    rectangular = _measured_length_per_px(pixel_um, steps["y"]) is not None
    # on pixels that are not square the fit's own µm would use the x step along every normal: it runs in pixels
    from .psf import EdgeAngleWarning

    with _collected_warnings(EdgeAngleWarning) as angle_messages:
        fit = fit_knife_edge(image, pixel_size_um=None if rectangular else pixel_um, angle=angle)
    for text in angle_messages:  # --angle disagrees with the map's own edge: one line
        _warn(quiet, f"{name}: {text} (on the command line: --angle)")
    fig = edge_fit_figure(fit, title=name, unit=unit)
    extra = {"angle_deg": fit.angle, "edge_px": fit.edge}
    if angle is not None and math.isfinite(fit.angle_from_map):  # the map's own angle, beside the one given
        extra.update(angle_from_map_deg=fit.angle_from_map, sigma_at_map_angle_px=fit.sigma_at_map_angle)
    if fit.slope:  # a background sloped along the normal was fitted
        extra["background_slope_per_px"] = fit.slope
    um_per_px = _measured_length_per_px(pixel_um, steps["y"], angle_deg=fit.angle) if rectangular else None
    if um_per_px:
        extra["pixels_not_square"] = (f"x step {pixel_um:g} µm, y step {steps['y']:g} µm: along the edge's normal "
                                      f"({fit.angle:.1f}° from the columns) a pixel is {um_per_px:.4g} µm")
    # a knife-edge scan gives σ to a few per cent (the paper's: ±2 %); a map without one straight edge
    # (particles, grains) still gives an erf fit, but a loose one: the HXN Fe map 13.7 ± 3.5 px
    if not fit.sigma_stderr <= EDGE_SIGMA_REL_STDERR * fit.sigma:
        extra["warning"] = (f"σ = {fit.sigma:.3g} ± {fit.sigma_stderr:.2g} px is uncertain (over "
                            f"{EDGE_SIGMA_REL_STDERR:.0%}): does map {name!r} hold one straight edge? " + EDGE_REMEDY)
        _warn(quiet, extra["warning"])
    extra["residual_correlation_z"] = fit.residual_correlation_z if math.isfinite(fit.residual_correlation_z) else None
    if fit.residual_correlation_z > RESIDUAL_STRUCTURE_Z:
        # σ can be tight and still wrong: the HXN Fe window of rows 20–80 fits 6.7 ± 0.64 px, its ESF
        # residual correlated over many bins (z 14.6), particles on both sides rather than one edge
        structure = (f"the edge profile of map {name!r} departs from a blurred step by more than its noise "
                     f"(residual lag-1 correlation z = {fit.residual_correlation_z:.1f} > {RESIDUAL_STRUCTURE_Z:g}): "
                     "the map does not hold one clean straight edge (or the PSF has tails), so σ = "
                     f"{fit.sigma:.3g} px may be wrong; see the residual panel of --figure. " + EDGE_REMEDY)
        extra["warning"] = f"{extra['warning']}; {structure}" if "warning" in extra else structure
        _warn(quiet, structure)
    return _report_psf("edge", name, line, fit.sigma, fit.sigma_stderr, pixel_um, extra, output, figure,
                       fig, overwrite, quiet, as_json, {"angle_deg": fit.angle}, inputs=[input_path],
                       um_per_px=um_per_px)


@psf.command("blind", context_settings=CONTEXT)
@_psf_common
@click.option("--kernel-size", type=click.IntRange(min=3), help="Blind kernel size, pixels (default from the map-only estimate).")
@click.option("--map-only", "--spectral", "spectral", is_flag=True,
              help="Only xrfgpu.psf.estimate_sigma (straight edges, else local edge profiles, else the spectrum; fast, no blind kernel).")
@_friendly
def psf_blind(input_path, pixel_size, element, line, output, figure, dataset, overwrite, quiet, as_json,
              kernel_size, spectral):
    """Estimate σ from an ordinary map: blind L0 kernel + Gaussian fit (or --map-only)."""
    from .figures import kernel_figure
    from .psf import sigma_from_kernel

    steps = {}
    name, image, pixel_um = _load_for_psf(input_path, element, pixel_size, dataset, allow_missing=True, steps=steps)
    um_per_px = _measured_length_per_px(pixel_um, steps["y"])
    nan = np.isnan(np.asarray(image, dtype=np.float64))
    if nan.any() and not spectral:
        from .io import MapFileError

        raise MapFileError(f"input {str(input_path)!r}: map {name!r} has {int(nan.sum())} missing pixel"
                           f"{'s' if nan.sum() > 1 else ''} (NaN); the blind kernel needs every pixel: use "
                           "--map-only (which reads σ beside them), or crop the scan to a region without them")
    line = _table_line(line or name, name)  # before the fit, which can take seconds
    output, figure = _psf_outputs("blind", input_path, output, figure, overwrite)
    progress = _Progress.for_options(quiet, as_json)
    with progress.stage(f"{name}: estimating σ from the map (xrfgpu.psf.estimate_sigma)"), \
            _sigma_warnings() as sigma_messages:
        from .front_door import _estimate_sigma, filled_for_estimators

        weights, work = None, image
        if nan.any():  # missing pixels: filled for the estimator, σ read beside wide holes (as restore reads it)
            weights = (~nan).astype(np.float64)
            import array_api_compat.numpy as xnp  # asarray(device=) on every NumPy

            work = filled_for_estimators(np.where(nan, 0.0, np.asarray(image, dtype=np.float64)), weights, xp=xnp)
        est = _estimate_sigma(work, None, strict=False, weights=weights)
    for text in sigma_messages:  # one line naming the map, not a raw Python warning
        _warn(quiet, f"{name}: {text}")
    extra = {"map_only_sigma_px": float(est.sigma), "map_only_method": getattr(est, "method", None)}
    if nan.any():
        extra["missing_pixels"] = int(nan.sum())
        if est.details and est.details.get("region"):
            extra["region"] = est.details["region"]
    if spectral:
        sigma, stderr = float(est.sigma), None
        kernel = None  # no kernel was estimated: the figure shows the Gaussian only
        kind = "map-only"
    else:
        from .blind import blind_l0

        size = kernel_size or max(7, 2 * math.ceil(3 * float(est.sigma)) + 1)
        size += 1 - size % 2
        label = f"{name}: blind L0 kernel ({size}×{size} px), pyramid levels"
        with progress.stage(label) as stage:
            def level_done(level):
                stage.label = f"{label} {progress.render_bar(level.n_levels - level.level, level.n_levels)}"

            res = blind_l0(image, size, final=False, callback=level_done)
        from ._backend import to_numpy

        kernel = to_numpy(res.kernel)
        fit = sigma_from_kernel(kernel)
        se = getattr(fit, "stderr", {}) or {}
        sigma = float(fit.sigma)
        stderr = 0.5 * sigma * math.hypot(se.get("sigma_u", 0.0) / fit.sigma_u, se.get("sigma_v", 0.0) / fit.sigma_v)
        extra["kernel_size"] = int(size)
        kind = "blind"
        # the L0 kernel is coarse (the paper's own finding): where the map's reading is reliable and its interval
        # leaves the kernel's σ out, say so (an edge scan at σ 6.5 px read 3.97 px here, its map-only σ 6.62 px,
        # both in the output and no word between them)
        if est.reliable and est.interval is not None and not est.interval[0] <= sigma <= est.interval[1]:
            extra["kernel_outside_map_interval"] = True
            _warn(quiet, f"{name}: the blind kernel's σ {sigma:.3g} px lies outside the interval {est.interval[0]:.3g}–"
                         f"{est.interval[1]:.3g} px of the map's own reading ({float(est.sigma):.3g} px, "
                         f"{getattr(est, 'method', 'estimate_sigma')}): the L0 kernel is coarse; prefer --map-only, or "
                         "measure the spot on a dot or an edge (psf dot, psf edge)")
    label = f"blind L0 kernel ({kernel.shape[0]}×{kernel.shape[1]} px)" if kernel is not None else None
    fig = kernel_figure(kernel, sigma, pixel_size_um=None if um_per_px else pixel_um, kernel_label=label,
                        title=f"{name}: {'blind L0 kernel and its Gaussian fit' if kernel is not None else 'σ estimated from the map (no kernel)'}")
    table_extra = {}
    scale = um_per_px or pixel_um
    if spectral:  # the estimate's interval and whether it can be trusted travel with the table to --psf-file
        table_extra["reliable"] = bool(est.reliable)
        extra["reliable"] = bool(est.reliable)
        if est.interval is not None:
            extra["interval_px"] = [float(est.interval[0]), float(est.interval[1])]
            if scale:
                table_extra["interval_lo_um"] = float(est.interval[0]) * scale
                table_extra["interval_hi_um"] = float(est.interval[1]) * scale
    if um_per_px:
        extra["pixels_not_square"] = (f"x step {pixel_um:g} µm, y step {steps['y']:g} µm: σ in pixels taken at "
                                      f"√(x y) = {um_per_px:.4g} µm per px"
                                      + ("" if kernel is not None else " (a round σ read in pixels: a compromise "
                                                                       "between the axes)"))
        if kernel is None:
            _warn(quiet, f"{name}: pixels are not square; {extra['pixels_not_square']}")
    return _report_psf(kind, name, line, sigma, stderr, pixel_um, extra, output, figure, fig, overwrite,
                       quiet, as_json, table_extra, inputs=[input_path], um_per_px=um_per_px)


# --------------------------------------------------------------------------- compare


def _holds(maps, name):
    """Whether ``maps`` has a map matching ``name`` (:meth:`xrfgpu.io.ElementMaps.find`)."""
    try:
        maps.find(name)
    except KeyError:
        return False
    return True


def _contrast(a):
    """Robust dynamic range (p99.5 − p0.5) / mean: deconvolution restores contrast that the blur spread out.

    Over the measured pixels: missing ones (NaN, e.g. blank CSV cells) are left out. ``compare`` takes the
    input's above the background the restoration recorded, as the restoration's is (the mean of a map over a
    background is raised by it: a restoration would gain contrast by removing it alone).
    """
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return float("nan")
    lo, hi = np.percentile(a, [0.5, 99.5])
    mean = float(np.abs(a).mean())
    return float((hi - lo) / mean) if mean > 0 else 0.0


def _against_truth(a, truth):
    """Pearson r with the truth and the RMS error after the best affine map a → truth (over the truth's range),
    on the pixels where both are measured (not NaN)."""
    from .metrics import affine_nrmse  # the one definition, also written on the compare figure

    a = np.asarray(a, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    measured = np.isfinite(a) & np.isfinite(t)
    a, t = a[measured], t[measured]
    r = float(np.corrcoef(a, t)[0, 1])
    return {"pearson_r": r, "nrmse": affine_nrmse(a, t)}


def _intensity_unit(maps, name, image):
    """Colour-bar unit of a map: the file's unit (MAPS channel units), "counts" for integer maps, else
    "input units" (fitted or normalised values whose unit the file does not say)."""
    units = maps.metadata.get("units") or {}
    try:
        unit = units.get(maps.find(name))
    except KeyError:
        unit = None
    if unit:
        return str(unit)
    a = np.asarray(image)
    if a.size and np.all(a >= 0) and np.all(np.round(a) == a):
        return "counts"
    return "input units"


def _recorded_background(maps, name):
    """The background a restoration removed from map ``name`` (its record's ``per_element`` entry), or None."""
    prov = maps.metadata.get("provenance") or {}
    per = ((prov.get("parameters") or {}).get("per_element") or {}).get(name) or {}
    value = per.get("background")
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def _restoration_label(maps, name):
    """"rl, σ = 0.3 µm (2 px), 20 iterations" from the provenance of a restored file ("" without one)."""
    prov = maps.metadata.get("provenance") or {}
    if not prov:
        return ""
    parts = [str(prov.get("method", "?"))]
    psf = (prov.get("psf") or {}).get(name) or {}
    if psf.get("sigma_um"):
        parts.append(f"σ = {psf['sigma_um']:.3g} µm ({psf.get('sigma_px', float('nan')):.3g} px)")
    elif psf.get("sigma_px"):
        parts.append(f"σ = {psf['sigma_px']:.3g} px")
    per = ((prov.get("parameters") or {}).get("per_element") or {}).get(name) or {}
    if per.get("iterations"):
        count = per["iterations"]
        parts.append(f"{count} iteration{'' if count == 1 else 's'}" + (f" ({per['stop']})" if per.get("stop") else ""))
    if per.get("tile"):
        parts.append(f"tiles of {per['tile']}")
    return ", ".join(parts)


@cli.command(context_settings=CONTEXT)
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("restored_path", metavar="RESTORED", type=click.Path(path_type=Path))
@click.option("--elements", help="Comma-separated elements (default: all in RESTORED).")
@click.option("--truth", type=click.Path(path_type=Path), help="Ground-truth maps (synthetic data) for MSE-type metrics.")
@click.option("-o", "--output", "figure", type=click.Path(),
              callback=_no_standard_output("the figure is written to a file", "-o compare.png",
                                           "--no-figure --json prints the metrics alone on stdout"),
              help="Figure file: .png, .pdf or .svg (default RESTORED_compare.png); not - (standard output).")
@click.option("--no-figure", is_flag=True, help="Only the metrics.")
@click.option("--row", type=click.IntRange(min=0), help="Row of the line profile (default the middle).")
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@_friendly
def compare(input_path, restored_path, elements, truth, figure, no_figure, row, overwrite, quiet, as_json):
    """Before/after figure with a line profile, and metrics (contrast, flux; with --truth, r and NRMSE)."""
    from .output_safety import check_outputs

    inputs = [input_path, restored_path, truth]
    fig_path = None
    if not no_figure:
        named = _named(restored_path)  # `compare ../scan .` run inside the restored folder
        fig_path = Path(figure) if figure else named.with_name(named.with_suffix("").name + "_compare.png")
        check_outputs([fig_path], inputs, overwrite=overwrite)  # before any work
        _check_figure_name(fig_path, "-o")
    after = _read_maps(restored_path, quiet or as_json)
    # the input as the restoration read it: the same MAPS/PyXRF dataset and scaler normalisation
    done = (after.metadata.get("provenance") or {}).get("parameters") or {}
    before = _read_maps(input_path, quiet or as_json, dataset=done.get("dataset"), normalize=done.get("normalize"))
    _report_skipped(before, quiet or as_json)
    if elements:
        names = [e.strip() for e in elements.split(",")]
    else:  # the restored elements the input holds too; the others are named, not an error
        names = [n for n in after.names if _holds(before, n)]
        missing = [n for n in after.names if n not in names]
        if not names:
            raise ValueError(f"{str(input_path)!r} holds none of the elements of {str(restored_path)!r} "
                             f"({', '.join(before.names)} against {', '.join(after.names)})")
        if missing:
            _warn(quiet, f"{str(input_path)!r} does not hold {', '.join(missing)}; comparing {', '.join(names)}")
    truth_maps = _read_maps(truth, quiet or as_json) if truth else None
    if before.shape != after.shape:
        raise ValueError(f"{str(restored_path)!r} has maps of shape {after.shape}, {str(input_path)!r} {before.shape}")
    if row is not None and row >= before.shape[0]:
        raise ValueError(f"--row {row} is outside the maps ({before.shape[0]} rows)")
    rows, bs, as_, ts = {}, [], [], []
    for q in names:
        a_name = after.find(q)
        b_name = before.find(a_name)
        b, a = before.maps[b_name], after.maps[a_name]
        # flux over the pixels the input measured: its missing ones (NaN) are filled in the restoration only
        measured = np.isfinite(np.asarray(b)) & np.isfinite(np.asarray(a))
        flux_in = float(np.sum(np.asarray(b)[measured], dtype=np.float64))
        flux_out = float(np.sum(np.asarray(a)[measured], dtype=np.float64))
        m = {"contrast_input": _contrast(b), "contrast_restored": _contrast(a),
             "flux_ratio": flux_out / flux_in if flux_in else float("nan")}
        bg = _recorded_background(after, a_name)
        if bg is not None:  # the restoration is signal above this background: its flux against the input's above it
            flux_above = flux_in - bg * int(np.sum(measured))
            m["background"] = bg
            m["flux_ratio_above_background"] = flux_out / flux_above if flux_above > 0 else float("nan")
            # and its contrast against the input's above it: the input with its background has a mean raised by
            # it, so a restoration (which removes it) gained contrast by the removal alone (Wiener on a map
            # over 107 counts of background: 1.19 -> 7.32 with it, 6.77 -> 7.32 like for like)
            m["contrast_input_with_background"] = m["contrast_input"]
            m["contrast_input"] = _contrast(np.asarray(b, dtype=np.float64) - bg)
        if truth_maps is not None:
            t = truth_maps.maps[truth_maps.find(a_name)]
            for label, x in (("input", b), ("restored", a)):
                for k, v in _against_truth(x, t).items():
                    m[f"{k}_{label}"] = v
            ts.append(t)
        rows[a_name] = m
        bs.append(b)
        as_.append(a)
    if not no_figure:
        from .figures import compare_figure, save_figure

        fig = compare_figure(bs, as_, list(rows), row=row, pixel_size_um=after.pixel_size_um or before.pixel_size_um,
                             truth=ts or None, unit=[_intensity_unit(before, n, b) for n, b in zip(rows, bs)],
                             labels=[_restoration_label(after, n) for n in rows],
                             background=[_recorded_background(after, n) for n in rows])
        save_figure(fig, fig_path, overwrite=overwrite, inputs=inputs)
    if as_json:
        click.echo(json.dumps({"metrics": rows, "figure": str(fig_path) if fig_path else None}, indent=2))
    elif not quiet:
        for name, m in rows.items():
            above = " above the background" if "background" in m else ""
            text = (f"{name}: contrast{above} {m['contrast_input']:.3g} -> {m['contrast_restored']:.3g}, "
                    f"flux ratio {m['flux_ratio']:.3f}")
            if "flux_ratio_above_background" in m:
                text += f" ({m['flux_ratio_above_background']:.3f} above the background {m['background']:.3g})"
            if "pearson_r_input" in m:
                text += (f"; vs truth r {m['pearson_r_input']:.3f} -> {m['pearson_r_restored']:.3f}, "
                         f"NRMSE {m['nrmse_input']:.4f} -> {m['nrmse_restored']:.4f}")
            click.echo(text)
        if fig_path:
            click.echo(f"wrote {fig_path}")
    return 0


# --------------------------------------------------------------------------- demo and info


@cli.command(context_settings=CONTEXT)
@click.argument("output_dir", required=False, default="xrfgpu-demo", type=click.Path(),
                callback=_no_standard_output("the demo writes a folder of files", "xrfgpu demo demo-report"))
@click.option("--size", type=click.Choice(["small", "full"]), default="small", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-q", "--quiet", is_flag=True)
@_friendly
def demo(output_dir, size, seed, quiet):
    """Run the paper's experiment on synthetic data and write a report to OUTPUT_DIR (default xrfgpu-demo/)."""
    try:
        from .demo import run_demo
    except ImportError as exc:
        raise CommandError(f"the demo is not available in this installation ({exc})") from exc
    progress = _Progress.for_options(quiet, False)  # run_demo makes OUTPUT_DIR, and removes it if it fails
    report = run_demo(output_dir, size=size, seed=seed,
                      progress=(lambda label, k, n: progress.line(f"  demo {progress.render_bar(k, n)} {label}"))
                      if progress.enabled else None)
    # the PSF used, how it was obtained, and the comparison table; the sweep and figures are in the report
    text = report.read_text(encoding="utf-8")
    _say(quiet, False, text.split("![raw and restored maps]")[0].rstrip())
    _say(quiet, False, f"\nwrote {report} (with panels.png, sigma_sweep.png/.csv, table.csv)")
    return 0


def _versions():
    from .provenance import software_versions

    return software_versions()


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True)
def info(as_json):
    """Versions, array backends (NumPy, CuPy and its GPU, Dask), the CUDA kernel cache location and the host
    build of the kernels (built, where, or why not)."""
    data = {"versions": _versions(), "backends": {"numpy": np.__version__}}
    try:
        from .cuda import info as cuda_info

        data["cuda"] = cuda_info()
    except Exception as exc:  # CUDA support is optional
        data["cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        from .device import gpu_available, gpu_status

        data["backends"]["cupy"] = gpu_status() if gpu_available() else f"not usable: {gpu_status()}"
    except Exception as exc:  # pragma: no cover
        data["backends"]["cupy"] = f"not usable: {exc}"
    try:
        from ._host_kernels import status as host_status

        data["host_kernels"] = host_status()
    except Exception as exc:  # pragma: no cover - the report must not fail
        data["host_kernels"] = {"state": "unavailable", "reason": f"{type(exc).__name__}: {exc}"}
    try:
        import dask

        data["backends"]["dask"] = dask.__version__
    except ImportError:
        data["backends"]["dask"] = "not installed (pip install 'xrfgpu[dask]')"
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return 0
    click.echo(f"xrfgpu {__version__}")
    click.echo("versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()))
    for k, v in data["backends"].items():
        click.echo(f"{k}: {v}")
    cuda = data["cuda"]
    if "error" in cuda:
        click.echo(f"cuda: {cuda['error']}")
    else:
        click.echo(f"kernel dir: {cuda.get('kernel_dir')}")
        click.echo(f"kernel cache: {cuda.get('kernel_cache_dir')}")
        click.echo(f"nvcc: {cuda.get('nvcc') or 'not found'}")
    click.echo(_host_kernels_line(data["host_kernels"]))
    return 0


def _host_kernels_line(host):
    """``xrfgpu info``'s line on the host build of the kernels (:func:`xrfgpu._host_kernels.status`)."""
    state, reason = host.get("state"), host.get("reason")
    if state in ("loaded", "cached"):
        return f"host kernels: {state}, {host.get('path')} ({reason})"
    if state == "not built":
        return f"host kernels: not built ({reason}; cache {host.get('cache_dir')})"
    return f"host kernels: {state} ({reason})" if state == "unavailable" else f"host kernels: {reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
