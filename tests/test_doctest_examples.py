"""The Examples sections of the docstrings run and print what they show.

A user copies a docstring's example into a notebook; an example that no
longer runs, or prints something else, misleads. Each module of the package
that has ``>>>`` examples is run through :mod:`doctest` (the standard library's
own checker: the expected output is what the docstring's author wrote, not
anything the code produced) and must pass every example.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import xrfgpu


def _modules_with_examples():
    names = ["xrfgpu"] + [info.name for info in pkgutil.walk_packages(xrfgpu.__path__, "xrfgpu.")]
    found = []
    for name in names:
        if name in ("xrfgpu.__main__",):
            continue
        module = importlib.import_module(name)
        finder = doctest.DocTestFinder(exclude_empty=True)
        if any(test.examples for test in finder.find(module)):
            found.append(name)
    return found


_MODULES = _modules_with_examples()


def test_examples_are_found():
    # the finder itself works: the package has examples in at least the modules documented with them
    assert "xrfgpu.usaf" in _MODULES
    assert len(_MODULES) >= 10


@pytest.mark.parametrize("module_name", _MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=False, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} docstring examples of {module_name} fail; "
        f"run python -m pytest --doctest-modules {module_name.replace('.', '/')}.py to see them")
