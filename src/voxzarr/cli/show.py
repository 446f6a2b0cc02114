"""``voxzarr show``: XY / XZ / ZY projections at physical aspect, saved as a picture
(:func:`voxzarr.plot.projections`).
"""

from __future__ import annotations

import argparse

from ._core import Run, add_select, apply_select, command, open_level, save_figure


@command("show", "save XY / XZ / ZY projections at true physical aspect as a picture")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", metavar="IN", help="OME-Zarr image")
    p.add_argument("out", metavar="OUT", help="picture to write (.png, .pdf, .svg)")
    p.add_argument("--level", default="0", help="multiscale level (index or path; default 0)")
    p.add_argument("--reduce", choices=("max", "mean", "min"), default="max",
                   help="projection along each hidden axis (default max)")
    p.add_argument("--time", default="0",
                   help="timepoint index, or max / mean / min over time (default 0)")
    p.add_argument("--vmin", type=float, default=None, help="value shown black")
    p.add_argument("--vmax", type=float, default=None, help="value shown white")
    p.add_argument("--cmap", default="gray", help="matplotlib colour map (one channel)")
    p.add_argument("--no-scale-bar", action="store_true", help="draw no scale bar")
    add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing picture")

    def run(args: argparse.Namespace) -> int:
        from ..plot import projections

        img = apply_select(open_level(args.path, args.level), args.select)
        t: int | str = int(args.time) if args.time.lstrip("-").isdigit() else args.time
        fig = projections(img, reduce=args.reduce, t=t, cmap=args.cmap, vmin=args.vmin,
                          vmax=args.vmax, scale_bar=not args.no_scale_bar)
        save_figure(fig, args.out, args.overwrite)
        print(f"wrote {args.out}: {args.reduce} projections of {args.path}")
        return 0

    return run
