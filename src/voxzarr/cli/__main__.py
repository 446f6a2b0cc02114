"""``python -m voxzarr.cli ARGS``: the same as ``voxzarr ARGS``."""

import sys

from . import main

if __name__ == "__main__":  # not when a package walk imports this module
    sys.exit(main())
