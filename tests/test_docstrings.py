"""The public API's docstrings name the parameters the functions take.

Every function a public module lists in ``__all__`` and documents with a
numpydoc ``Parameters`` section must list exactly the parameters of its
signature (a renamed or added keyword left out of the docstring, or a removed
one still described, fails here). The top-level ``xrfgpu`` functions must have
the section. The sections are found the numpydoc way: a title line followed by
a line of dashes of the same length.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import xrfgpu

_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]+)\n-+$", re.M)
_ENTRY = re.compile(r"^(?P<names>\*{0,2}[A-Za-z_][\w]*(?:\s*,\s*\*{0,2}[A-Za-z_][\w]*)*)\s*(?::.*)?$")


def _public_modules():
    names = ["xrfgpu"]
    for info in pkgutil.walk_packages(xrfgpu.__path__, "xrfgpu."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def _public_functions():
    seen = {}
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.isfunction(obj) and obj.__module__.startswith("xrfgpu"):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", (module_name, obj))
    return sorted(seen.items())


def parameters_section(doc):
    """The names a numpydoc docstring's ``Parameters`` section describes, or None without one."""
    matches = list(_SECTION.finditer(doc))
    for k, m in enumerate(matches):
        if m.group("title").strip() != "Parameters":
            continue
        end = matches[k + 1].start() if k + 1 < len(matches) else len(doc)
        names = []
        for line in doc[m.end():end].splitlines():
            if not line.strip() or line.startswith((" ", "\t")):
                continue
            entry = _ENTRY.match(line.strip())
            assert entry, f"not a numpydoc parameter line: {line!r}"
            names += [n.strip().lstrip("*") for n in entry.group("names").split(",")]
        return names
    return None


def test_the_parser_reads_a_numpydoc_section():
    doc = "Title.\n\nParameters\n----------\nx, y : float\n    Text.\n**options\n    More.\nReturns\n-------\nz : float\n"
    assert parameters_section(doc) == ["x", "y", "options"]
    assert parameters_section("No sections.") is None


FUNCTIONS = _public_functions()


def test_the_public_api_is_found():
    names = {key.rsplit(".", 1)[-1] for key, _ in FUNCTIONS}
    assert {"restore", "richardson_lucy", "wiener", "fista", "restore_stack", "estimate_sigma"} <= names
    assert len(FUNCTIONS) > 100


@pytest.mark.parametrize("key", [key for key, _ in FUNCTIONS])
def test_the_parameters_section_names_the_signature(key):
    module_name, function = dict(FUNCTIONS)[key]
    signature = inspect.signature(function)
    taken = [name for name, p in signature.parameters.items()]
    documented = parameters_section(inspect.getdoc(function) or "")
    if documented is None:
        assert module_name != "xrfgpu" or not taken, f"{key} takes {taken} and has no Parameters section"
        return
    assert sorted(set(documented)) == sorted(documented), f"{key} describes a parameter twice: {documented}"
    assert set(documented) == set(taken), (f"{key}: described but not taken {sorted(set(documented) - set(taken))}, "
                                           f"taken but not described {sorted(set(taken) - set(documented))}")
