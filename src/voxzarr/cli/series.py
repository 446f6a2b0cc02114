"""``voxzarr series``: rewrite an image in the series chunk layout, or back with
``--to-images`` (:func:`voxzarr.series.to_series`, :func:`voxzarr.series.to_images`).
"""

from __future__ import annotations

import argparse

from ._core import Run, add_progress, command, progress_flag, shape_arg


@command("series", "image <-> series chunk layout: chunks holding whole time series, made "
         "in one bounded-memory, resumable pass")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("input", metavar="IN", help="OME-Zarr image with a t axis (a series store "
                   "with --to-images); convert TIFF / frames / Thunder archives first with "
                   "`voxzarr convert`")
    p.add_argument("output", metavar="OUT", help="store to write")
    p.add_argument("--memory", default="512MB",
                   help="memory budget for data in flight, e.g. 512MB, 2GiB (default 512MB)")
    p.add_argument("--block", type=shape_arg,
                   help="spatial block of a series chunk: '16' (every spatial axis), "
                   "'16,32' or 'y=16,x=32' (default: about 1 MiB of whole series)")
    p.add_argument("--shards", default=None,
                   help="spatial shard shape in whole blocks (default: shard only when there "
                   "would be more than 4096 chunks; 'none' for never)")
    p.add_argument("--to-images", action="store_true",
                   help="write a series store back in the image layout (one timepoint per "
                   "chunk)")
    p.add_argument("--staging", choices=("auto", "on", "off"), default="auto",
                   help="stage through a scratch array instead of re-reading the source "
                   "(default auto)")
    p.add_argument("--threads", type=int, default=None, help="threads (default: CPUs, <= 8)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--restart", action="store_true",
                   help="start again instead of resuming an interrupted conversion")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..io import open_image
        from ..series import open_series, series_info, to_images, to_series

        staging = {"auto": "auto", "on": True, "off": False}[args.staging]
        common = dict(memory=args.memory, overwrite=args.overwrite, resume=not args.restart,
                      staging=staging, threads=args.threads, source=args.input,
                      progress=progress_flag(args))
        if args.to_images:
            ser = open_series(args.input)
            to_images(ser, args.output, **common)
            img = open_image(args.output)
            print(f"wrote {args.output}: image layout {dict(img.sizes)} {img.dtype}, "
                  f"chunks {img.data.chunksize}")
            return 0
        img = open_image(args.input)
        shards = None if args.shards is None else (
            False if args.shards.lower() == "none" else shape_arg(args.shards))
        to_series(img, args.output, block=args.block, shards=shards, **common)
        meta = series_info(args.output)
        print(f"wrote {args.output}: series layout {dict(img.sizes)} {img.dtype}, "
              f"chunks {tuple(meta['chunks'])}, shards "
              f"{tuple(meta['shards']) if meta['shards'] else None}")
        return 0

    return run
