"""``voxzarr upgrade``: an NGFF 0.4 (zarr v2) store to NGFF 0.5 (zarr v3, sharded)
(:func:`voxzarr.convert.upgrade`).
"""

from __future__ import annotations

import argparse

from ._core import Run, add_progress, command, progress_flag, shape_arg


@command("upgrade", "upgrade an NGFF 0.4 (zarr v2) store to NGFF 0.5 (zarr v3, sharded)")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("src", help="NGFF 0.4 (or older) store")
    p.add_argument("dest", help="NGFF 0.5 store to write")
    p.add_argument("--shards", default="auto",
                   help="'auto' (default, ~128 MiB per shard), 'none', one int for the "
                   "spatial axes, '1,1,256,256,256' or 'z=256,y=512'")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--reencode", action="store_true",
                   help="decode and re-encode every chunk (blosc-zstd) instead of copying "
                   "encoded chunks as they are")
    p.add_argument("--no-verify", action="store_true",
                   help="skip comparing metadata and sample shards with the source")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..convert import upgrade

        shards = "auto" if args.shards == "auto" else shape_arg(args.shards)
        upgrade(args.src, args.dest, shards=shards, overwrite=args.overwrite,
                progress=progress_flag(args), verify=not args.no_verify,
                reencode=args.reencode)
        print(f"wrote {args.dest} (NGFF 0.5, zarr v3)")
        return 0

    return run
