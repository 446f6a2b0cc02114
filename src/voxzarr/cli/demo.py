"""``voxzarr demo``: write the bundled sample, make it isotropic and plot projections
(:func:`voxzarr.demo.run_demo`).
"""

from __future__ import annotations

import argparse

from ._core import Run, command


@command("demo", "write the bundled sample as OME-Zarr, make it isotropic, plot projections")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    def run(args: argparse.Namespace) -> int:
        from ..demo import run_demo

        run_demo(args.out, overwrite=args.overwrite)
        return 0

    return run
