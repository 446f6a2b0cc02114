"""``voxzarr convert``: TIFF, frame folders and raw (Thunder) archives to OME-Zarr
(:func:`voxzarr.convert`), then a one-line summary of what was written.
"""

from __future__ import annotations

import argparse

from ._core import (
    Run,
    add_ngff_version,
    add_progress,
    command,
    progress_flag,
    shape_arg,
    voxel_size_arg,
)


@command("convert", "convert TIFF / OME-TIFF / ImageJ stacks, frame folders or raw (Thunder) "
         "archives into OME-Zarr")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("src", nargs="+", help="TIFF file, folder of frames, raw folder with "
                   "conf.json, or several frame files")
    p.add_argument("dest", help="OME-Zarr store to write")
    p.add_argument("--voxel-size", type=voxel_size_arg,
                   help="spacing: '0.2', '1,0.2,0.2' (z,y,x) or 'z=1,y=0.2,x=0.2'; "
                   "overrides the file")
    p.add_argument("--unit", help="spatial unit (micrometer, um, nm, mm, ...)")
    p.add_argument("--axes", help="what each input axis is, e.g. 'tyx' for a time-lapse "
                   "stored as plain pages")
    p.add_argument("--time-interval", type=float, help="frame interval of the t axis")
    p.add_argument("--time-unit", help="unit of the frame interval (default second)")
    p.add_argument("--channel-names", help="comma-separated channel labels")
    p.add_argument("--series", type=int, default=0, help="series of a multi-series TIFF")
    p.add_argument("--chunks", type=shape_arg, help="chunk shape: '128', '1,64,64' or "
                   "'z=32,y=256,x=256'")
    p.add_argument("--shards", type=shape_arg, help="shard shape, as --chunks (NGFF 0.5)")
    add_ngff_version(p)
    p.add_argument("--pyramid", action="store_true", help="also write a multiscale pyramid")
    p.add_argument("--layout", choices=("auto", "image", "series"), default="auto",
                   help="chunk layout: 'series' (chunks hold whole time series; open with "
                   "vz.open_series), 'image', or 'auto' (series for a Thunder series, "
                   "default)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-verify", action="store_true",
                   help="skip reopening and comparing the result with the input")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..convert import convert

        src = args.src[0] if len(args.src) == 1 else args.src
        names = args.channel_names.split(",") if args.channel_names else None
        convert(src, args.dest, voxel_size=args.voxel_size, unit=args.unit, axes=args.axes,
                time_interval=args.time_interval, time_unit=args.time_unit,
                channel_names=names, series=args.series, chunks=args.chunks,
                shards=args.shards, version=args.ngff_version, pyramid=args.pyramid,
                overwrite=args.overwrite, progress=progress_flag(args),
                verify=not args.no_verify, layout=args.layout)
        from ..io import open_image

        img = open_image(args.dest)
        size = ", ".join(f"{d}={v:g} {img.vox.units.get(d) or ''}".rstrip()
                         for d, v in img.vox.scale.items())
        print(f"wrote {args.dest}: {dict(img.sizes)} {img.dtype}; {size}")
        return 0

    return run
