"""Per-element-line PSF table: σ per X-ray line, TOML/JSON files, energy interpolation.

A polychromatic micro-XRF source focuses each fluorescence energy
differently: low-energy lines are blurrier (Yang et al. 2022 use σ = 40 µm
for Fe-Kα, 50 µm for Ca-Kα and 80 µm for Si-Kα in a skarn). A
:class:`PSFModel` holds the measured σ of each line and gives the Gaussian
PSF of any line at a given scan step; lines that were not measured are
interpolated linearly in their emission energy, taken from xraylib.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from pathlib import Path

from .._atomic import atomic_write_text
from ._gaussian import gaussian, um_to_pixels

__all__ = ["PSFModel", "line_energy_kev", "normalise_line"]

_LINE_RE = re.compile(
    r"^\s*([A-Z][a-z]?)\s*[-_ ]?\s*([KLMklm])\s*([aAbBgGαβγ]|alpha|beta|gamma)?\s*([0-9]*)\s*$"
)
_GREEK = {"α": "a", "alpha": "a", "β": "b", "beta": "b", "γ": "g", "gamma": "g"}


def normalise_line(line: str) -> str:
    """Canonical spelling ``"Fe-Ka"`` of a line name (``"Fe Kα"``, ``"fe-ka"``... accepted).

    Names given as bytes (h5py's reading of MAPS ``channel_names``, e.g. ``b"Pt_L"``) are
    decoded as UTF-8 first.

    Raises
    ------
    ValueError
        If the name is not an element symbol followed by a K/L/M line.
    TypeError
        If it is not a string (or bytes).
    """
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace").strip("\x00")
    if not isinstance(line, str):
        raise TypeError(f"an X-ray line name must be a string like 'Fe-Ka', got {line!r}")
    text = line.strip()
    m = _LINE_RE.match(text[:1].upper() + text[1:2].lower() + text[2:]) if text else None
    if m is None:
        raise ValueError(f"cannot read the X-ray line {line!r}; write it like 'Fe-Ka', 'Ca-Kb' or 'Pb-La'")
    symbol, family, sub, digit = m.groups()
    sub = _GREEK.get(sub, sub or "a").lower()
    return f"{symbol}-{family.upper()}{sub}{digit}"


def line_energy_kev(line: str) -> float:
    """Emission energy of an X-ray line in keV, from xraylib (``LineEnergy``).

    Raises
    ------
    ValueError
        Unknown element or a line that xraylib does not tabulate for it.
    ImportError
        If xraylib is not installed.
    """
    try:
        import xraylib
    except ImportError as exc:  # pragma: no cover - xraylib comes with the io extra (and the tests)
        raise ImportError("line energies need xraylib (pip install xraylib, or xrfgpu[io])") from exc
    name = normalise_line(line)
    symbol, rest = name.split("-")
    try:
        z = xraylib.SymbolToAtomicNumber(symbol)
    except ValueError:
        raise ValueError(f"unknown element symbol {symbol!r} in line {line!r}") from None
    macro = f"{rest[0]}{rest[1:].upper()}_LINE"
    if not hasattr(xraylib, macro) and hasattr(xraylib, f"{rest[0]}{rest[1:].upper()}1_LINE"):
        # xraylib names the Mα line only by its main component, Mα1 (M5N7): MA1_LINE, no MA_LINE
        macro = f"{rest[0]}{rest[1:].upper()}1_LINE"
    if not hasattr(xraylib, macro):
        raise ValueError(f"xraylib has no line {rest!r} (looked for xraylib.{macro}) for {line!r}")
    try:
        energy = float(xraylib.LineEnergy(z, getattr(xraylib, macro)))
    except ValueError:
        raise ValueError(f"xraylib tabulates no {rest} line for {symbol}") from None
    if not energy > 0:
        raise ValueError(f"xraylib tabulates no {rest} line for {symbol}")
    return energy


class PSFModel:
    """Gaussian PSF per element line, in µm, with energy interpolation.

    Parameters
    ----------
    sigma_um : mapping of str to float
        σ of the isotropic Gaussian spot per line, µm, e.g.
        ``{"Fe-Ka": 40, "Ca-Ka": 50, "Si-Ka": 80}`` (the paper's skarn).
        Line names are normalised (``"Fe Kα"`` → ``"Fe-Ka"``).
    note : str
        Free text kept in the file (instrument, date, how σ was measured).

    Raises
    ------
    ValueError
        Empty table, a non-positive or non-finite σ, an unreadable line name,
        or two spellings of the same line.

    Notes
    -----
    :meth:`sigma_um` of a line that is not in the table is the linear
    interpolation of σ against the emission energy E of the measured lines
    (E from xraylib), σ(E) = σ_i + (σ_j − σ_i)(E − E_i)/(E_j − E_i) between
    the two neighbouring measured energies. Outside the measured range it
    raises unless ``extrapolate=True`` (then the end segment is extended,
    and σ is kept ≥ the smallest measured σ / 4).

    References
    ----------
    J. Yang, Z. Zhang, Q. Cheng, J. Anal. At. Spectrom. 37, 750 (2022),
    doi:10.1039/d1ja00425e (Fig. 9, σ per element line).
    T. Schoonjans et al., "The xraylib library for X-ray–matter
    interactions. Recent developments", Spectrochim. Acta B 66, 776 (2011),
    doi:10.1016/j.sab.2011.09.011.

    Examples
    --------
    >>> from xrfgpu.psf import PSFModel
    >>> model = PSFModel({"Fe-Ka": 40, "Ca-Ka": 50, "Si-Ka": 80})
    >>> model.sigma_um("Fe Kα")
    40.0
    >>> 40.0 < model.sigma_um("Ti-Ka") < 50.0   # 4.51 keV lies between Ca-Kα and Fe-Kα
    True
    >>> h = model.psf("Fe-Ka", pixel_size_um=10.0)   # 33×33 Gaussian, σ = 4 px
    """

    def __init__(self, sigma_um, *, note: str = ""):
        if not hasattr(sigma_um, "items"):
            raise TypeError(f"sigma_um must be a mapping of line name to σ in µm, got {type(sigma_um).__name__}")
        table = {}
        for line, value in sigma_um.items():
            name = normalise_line(line)
            try:
                s = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"σ of {line!r} must be a number of µm, got {value!r}") from None
            if not (s > 0 and math.isfinite(s)):
                raise ValueError(f"σ of {line!r} must be a positive number of µm, got {value!r}")
            if name in table:
                raise ValueError(f"line {name!r} is given twice")
            table[name] = s
        if not table:
            raise ValueError("a PSF model needs at least one line")
        self._sigma = table
        self.note = str(note)

    # -- table -------------------------------------------------------------
    @property
    def lines(self) -> tuple:
        """Measured lines, canonical names, in the order given."""
        return tuple(self._sigma)

    def as_dict(self) -> dict:
        """``{"sigma_um": {line: σ}, "note": ...}``, the file content."""
        return {"sigma_um": dict(self._sigma), "note": self.note}

    def __repr__(self) -> str:
        return f"PSFModel({self._sigma!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, PSFModel) and self._sigma == other._sigma and self.note == other.note

    # -- σ per line --------------------------------------------------------
    def sigma_um(self, line: str, *, extrapolate: bool = False) -> float:
        """σ in µm of ``line``: measured, or interpolated in energy (see Notes of the class)."""
        name = normalise_line(line)
        if name in self._sigma:
            return self._sigma[name]
        if len(self._sigma) < 2:
            raise ValueError(
                f"line {name!r} is not in the model and one measured line "
                f"({self.lines[0]}) is not enough to interpolate; measure {name} or add a second line"
            )
        energy = line_energy_kev(name)
        points = sorted((line_energy_kev(k), v) for k, v in self._sigma.items())
        e_lo, e_hi = points[0][0], points[-1][0]
        if not e_lo <= energy <= e_hi and not extrapolate:
            raise ValueError(
                f"{name} ({energy:.3f} keV) lies outside the measured lines ({e_lo:.3f}–{e_hi:.3f} keV); "
                "pass extrapolate=True to extend the end segment, or measure it"
            )
        energies = [e for e, _ in points]
        i = min(max(bisect.bisect_right(energies, energy) - 1, 0), len(points) - 2)
        (e0, s0), (e1, s1) = points[i], points[i + 1]
        if e1 == e0:  # two lines of equal energy
            return 0.5 * (s0 + s1)
        value = s0 + (s1 - s0) * (energy - e0) / (e1 - e0)
        return max(value, min(self._sigma.values()) / 4.0)

    def sigma_px(self, line: str, pixel_size_um: float, *, extrapolate: bool = False) -> float:
        """σ of ``line`` in pixels of ``pixel_size_um`` µm."""
        return um_to_pixels(self.sigma_um(line, extrapolate=extrapolate), pixel_size_um)

    def psf(self, line: str, pixel_size_um: float, shape=None, *, extrapolate=False, xp=None, device=None,
            dtype=None):
        """Unit-sum Gaussian PSF of ``line`` sampled at ``pixel_size_um`` (see :func:`xrfgpu.psf.gaussian`)."""
        return gaussian(shape, self.sigma_px(line, pixel_size_um, extrapolate=extrapolate), xp=xp,
                        device=device, dtype=dtype)

    # -- files ---------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the table to ``path`` (``.toml`` or ``.json``), atomically; returns the path."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            text = json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n"
        elif suffix == ".toml":
            lines = ["# xrfgpu PSF model: Gaussian sigma per X-ray line, in micrometres"]
            lines.append(f"note = {json.dumps(self.note, ensure_ascii=False)}")
            lines.append("")
            lines.append("[sigma_um]")
            lines += [f"{json.dumps(k)} = {v!r}" for k, v in self._sigma.items()]
            text = "\n".join(lines) + "\n"
        else:
            raise ValueError(f"save a PSF model as .toml or .json, got {path.name!r}")
        atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path) -> PSFModel:
        """Read a table written by :meth:`save` (or by hand) from a ``.toml`` or ``.json`` file.

        Raises
        ------
        ValueError
            Unknown suffix, unparsable file, or no ``sigma_um`` table.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        try:
            if suffix == ".json":
                data = json.loads(path.read_text(encoding="utf-8"))
            elif suffix == ".toml":
                import tomllib

                data = tomllib.loads(path.read_text(encoding="utf-8"))
            else:
                raise ValueError(f"a PSF model file must end in .toml or .json, got {path.name!r}")
        except (json.JSONDecodeError, ValueError) as exc:
            if isinstance(exc, ValueError) and "must end in" in str(exc):
                raise
            raise ValueError(f"cannot parse PSF model file {str(path)!r}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("sigma_um"), dict):
            raise ValueError(f"{str(path)!r} has no [sigma_um] table of line = sigma in µm")
        return cls(data["sigma_um"], note=str(data.get("note", "")))
