"""``voxzarr png``: one PNG per z plane or timepoint, at physical aspect
(:func:`voxzarr.plot.to_pngs`).
"""

from __future__ import annotations

import argparse

from ._core import Run, add_progress, add_select, apply_select, command, progress_flag


@command("png", "write one PNG per z plane or timepoint (physical aspect, 8 or 16 bit)")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", help="OME-Zarr image")
    p.add_argument("outdir", help="folder for the PNGs (created if missing)")
    p.add_argument("--level", default="0", help="multiscale level (index or path; default 0)")
    p.add_argument("--dim", choices=("z", "t"), default="z",
                   help="one PNG per z plane (default) or per timepoint")
    p.add_argument("--projection", choices=("max", "mean", "min"), default=None,
                   help="reduce the remaining axis (z for --dim t, t for --dim z)")
    p.add_argument("--vmin", type=float, default=None, help="value shown black (default: min)")
    p.add_argument("--vmax", type=float, default=None, help="value shown white (default: max)")
    p.add_argument("--cmap", default="gray", help="matplotlib colour map (8-bit only)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bits per sample")
    add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing PNGs")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..io import open_image
        from ..plot import to_pngs

        level: int | str = int(args.level) if args.level.isdigit() else args.level
        img = apply_select(open_image(args.path, level=level), args.select)
        paths = to_pngs(img, args.outdir, dim=args.dim, projection=args.projection,
                        vmin=args.vmin, vmax=args.vmax, cmap=args.cmap, bits=args.bits,
                        overwrite=args.overwrite, progress=progress_flag(args))
        print(f"wrote {len(paths)} PNGs to {args.outdir} ({paths[0].name} .. {paths[-1].name})")
        return 0

    return run
