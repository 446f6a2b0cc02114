"""``voxzarr series-map``: a per-voxel statistic over time, saved as a picture."""

from __future__ import annotations

import argparse

from ._core import SERIES_STATS, Run, add_select, apply_select, command, open_level, save_figure


@command("series-map", "save a per-voxel map of time series (mean, std, ...) as a picture")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", metavar="IN", help="OME-Zarr image or series store with a t axis")
    p.add_argument("out", metavar="OUT", help="picture to write (.png, .pdf, .svg)")
    p.add_argument("--stat", choices=SERIES_STATS, default="mean",
                   help="statistic over t per voxel (default mean)")
    add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing picture")

    def run(args: argparse.Namespace) -> int:
        ser = apply_select(open_level(args.path, "0"), args.select)
        fig = ser.vox.series.map_figure(args.stat)
        save_figure(fig, args.out, args.overwrite)
        print(f"wrote {args.out}: {args.stat} over t of {args.path}")
        return 0

    return run
