"""``voxzarr halo``: store overlap halos beside an image, sized by ``--depth`` or a
``--filter``; prints each halo's status, exit status 1 when one is missing or stale.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ArgumentError
from ._core import (
    FILTER_NAMES,
    Run,
    add_progress,
    command,
    filter_params,
    print_json,
    progress_flag,
    shape_arg,
)


def _depth_arg(text: str) -> Any:
    """``"8"`` or ``"z=4,y=8,x=8"`` (voxels)."""
    try:
        if "=" in text:
            return {k.strip(): int(v) for k, v in (p.split("=") for p in text.split(","))}
        return int(text)
    except ValueError:
        raise ArgumentError(f"depth must be N or dim=N,...; got {text!r}",
                            field="--depth") from None


@command("halo", "store overlap-halo chunks beside an image (one read per filtered chunk); "
         "prints each halo's status, exit status 1 when one is missing or stale")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", help="OME-Zarr image (updated in place)")
    p.add_argument("--depth", type=_depth_arg, default=None,
                   help="halo voxels per side: N, or z=4,y=8,x=8 (default: from --filter)")
    p.add_argument("--filter", dest="filter_name", default=None, choices=FILTER_NAMES,
                   metavar="FILTER",
                   help="size the halo for this filter: " + ", ".join(FILTER_NAMES))
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="filter parameter, repeatable (sigma=5, mode=wrap, units=physical)")
    p.add_argument("--levels", default="all", help="'all' (default) or e.g. 0,1")
    p.add_argument("--periodic", default=None,
                   help="axes whose halo holds the opposite face (e.g. x,y), for mode=wrap")
    p.add_argument("--chunks", type=shape_arg, default=None,
                   help="core chunk shape: '64', '64,128,128' or 'z=64,y=128,x=128'")
    p.add_argument("--check", action="store_true",
                   help="only print the stored halos and whether they are fresh")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..halo import halo_status, write_halo

        if not args.check:
            for_filter = None
            if args.filter_name:
                from ..filters import halo_depth_rule

                for_filter = halo_depth_rule((args.filter_name, filter_params(args.param)))
            elif args.param:
                raise ArgumentError("--param needs --filter", field="--param")
            levels: Any = args.levels
            if levels != "all":
                levels = [int(v) if v.isdigit() else v for v in levels.split(",")]
            periodic = args.periodic.split(",") if args.periodic else None
            chunks = args.chunks
            write_halo(None, args.path, depth=args.depth, for_filter=for_filter,
                       levels=levels, periodic=periodic, chunks=chunks,
                       progress=progress_flag(args))
        status = halo_status(args.path)
        print_json(status)
        return 0 if status and all(s.get("fresh") for s in status) else 1

    return run
