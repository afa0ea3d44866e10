"""``python -m xrfgpu``: the ``xrfgpu`` command line (see :mod:`xrfgpu.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
