"""``voxzarr filter``: filter an image chunk by chunk and write it as OME-Zarr
(:func:`voxzarr.filters.apply_filter`); ``filter IN OUT NAME`` still works.
"""

from __future__ import annotations

import argparse

from ..errors import ArgumentError
from ._core import (
    FILTER_MODES,
    FILTER_NAMES,
    Run,
    add_ngff_version,
    add_progress,
    command,
    filter_params,
    progress_flag,
    shape_arg,
)


@command("filter", "filter an image chunk by chunk, exactly as on the whole image")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", metavar="IN", help="input OME-Zarr image")
    p.add_argument("out", metavar="OUT", help="output OME-Zarr image")
    p.add_argument("legacy_name", nargs="?", metavar="FILTER", choices=(None, *FILTER_NAMES),
                   help=argparse.SUPPRESS)  # the old `filter IN OUT NAME` order still works
    p.add_argument("--filter", dest="name", default=None, choices=FILTER_NAMES,
                   metavar="FILTER", help="the filter (required): " + ", ".join(FILTER_NAMES))
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="filter parameter, repeatable (sigma=2, size=3, axis=x)")
    p.add_argument("--mode", default="reflect", choices=FILTER_MODES,
                   help="boundary mode (default reflect)")
    p.add_argument("--cval", type=float, default=0.0, help="value outside for --mode constant")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"),
                   help="where to compute (default auto: the GPU when there is one)")
    p.add_argument("--physical", dest="units", action="store_const", const="physical",
                   default="voxel", help="sigmas and sizes in physical units, not voxels")
    p.add_argument("--units", dest="units", choices=("voxel", "physical"),
                   help=argparse.SUPPRESS)
    p.add_argument("--level", default="0", help="level to filter (index or path)")
    p.add_argument("--chunks", type=shape_arg, default=None,
                   help="output chunk shape: '128', '64,128,128' or 'z=64,y=128,x=128'")
    add_ngff_version(p)
    halo = p.add_mutually_exclusive_group()
    halo.add_argument("--require-halo", action="store_true",
                      help="fail unless a fresh stored halo can be used")
    halo.add_argument("--no-halo", action="store_true",
                      help="ignore stored halos; gather neighbours at run time")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..filters import apply_filter
        from ..io import open_image, to_ome_zarr

        name = args.name or args.legacy_name
        if name is None:
            raise ArgumentError(f"expected a filter, found none: add --filter, one of "
                                f"{', '.join(FILTER_NAMES)}", field="--filter")
        args.name = name
        level: int | str = int(args.level) if args.level.isdigit() else args.level
        img = open_image(args.path, level=level)
        halo = "require" if args.require_halo else "never" if args.no_halo else "auto"
        out = apply_filter(img, args.name, mode=args.mode, cval=args.cval,
                           device=args.device, units=args.units, halo=halo,
                           **filter_params(args.param))
        to_ome_zarr(out, args.out, chunks=args.chunks, version=args.ngff_version,
                    overwrite=args.overwrite, progress=progress_flag(args))
        print(f"wrote {args.out}: {args.name} of {args.path} level {level}")
        return 0

    return run
