"""``python -m xrfgpu`` and the ``xrfgpu`` console script: the command line of :mod:`xrfgpu.cli`.

The command line needs the ``io`` extra (click, tifffile, h5py, matplotlib);
on a core-only install this entry point says so instead of failing with a
traceback.
"""

import sys


def main(argv=None) -> int:
    """Run :func:`xrfgpu.cli.main`, or explain which extra to install."""
    try:
        from .cli import main as cli_main
    except ModuleNotFoundError as exc:
        if exc.name in ("click", "tifffile", "h5py", "matplotlib"):
            print(f"xrfgpu: the command line needs {exc.name!r}; install it with: pip install 'xrfgpu[io]'",
                  file=sys.stderr)
            return 1
        raise
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
