"""``voxzarr info``: a store's axes, shape, dtype, voxel size, chunks, codecs and sizes
per level, as a table or JSON (:func:`voxzarr.info`).
"""

from __future__ import annotations

import argparse

from ._core import Run, command, print_json


@command("info", "axes, shape, dtype, voxel size, chunks, codecs and sizes of each level")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", help="OME-Zarr store")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def run(args: argparse.Namespace) -> int:
        from ..inspect import format_info, info

        report = info(args.path)
        if args.json:
            print_json(report)
        else:
            print(format_info(report))
        return 0

    return run
