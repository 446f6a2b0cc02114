"""``voxzarr isotropic``: resample an image to isotropic voxels, written in its stored
chunks (and pyramid levels with ``--pyramid``) in one streaming pass.
"""

from __future__ import annotations

import argparse

from ..errors import ArgumentError
from ._core import (
    RESAMPLE_MODES,
    Run,
    add_ngff_version,
    add_progress,
    command,
    progress_flag,
    shape_arg,
)


@command("isotropic", "resample an OME-Zarr image to isotropic voxels, streaming to OME-Zarr")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("input", metavar="IN", help="OME-Zarr image to read (level 0)")
    p.add_argument("output", metavar="OUT", help="OME-Zarr image to write")
    p.add_argument("--voxel-size", type=float, default=None,
                   help="target voxel side before --zoom (default: the finest spacing)")
    p.add_argument("--zoom", type=float, default=1.0,
                   help="divide the voxel side by this (2 = twice as many voxels per axis)")
    p.add_argument("--order", type=int, default=1, help="spline order 0-5 (default 1)")
    p.add_argument("--mode", default="nearest", choices=RESAMPLE_MODES,
                   help="boundary mode (default nearest)")
    p.add_argument("--no-anti-alias", action="store_true",
                   help="do not smooth downsampled axes first")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--chunks", type=shape_arg, default=None,
                   help="output chunk shape: '128' (every spatial axis), '64,128,128' or "
                   "'z=64,y=128,x=128' (default 128 in 3-D, 512 in 2-D)")
    add_ngff_version(p)
    p.add_argument("--pyramid", action="store_true",
                   help="also write multiscale levels of the resampled image (mean, planned "
                   "as by `voxzarr pyramid`), computed in the same streaming pass")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..io import default_chunks, open_image, to_ome_zarr
        from ..resample import isotropic_voxel_size, output_length, to_isotropic

        img = open_image(args.input)
        target = isotropic_voxel_size(img, args.voxel_size, args.zoom)
        scale = img.vox.voxel_size
        shape = tuple(output_length(n, scale[d], target) if d in scale else n
                      for d, n in zip(img.dims, img.shape, strict=True))
        chunks = default_chunks(img.dims, shape)
        if isinstance(args.chunks, int):
            chunks = tuple(min(args.chunks, n) if d in scale else c
                           for d, n, c in zip(img.dims, shape, chunks, strict=True))
        elif isinstance(args.chunks, dict):
            chunks = tuple(min(args.chunks.get(d, c), n)
                           for d, n, c in zip(img.dims, shape, chunks, strict=True))
        elif args.chunks is not None:
            if len(args.chunks) != len(shape):
                raise ArgumentError(f"expected {len(shape)} chunk lengths for axes "
                                    f"{''.join(img.dims)}, found {len(args.chunks)}",
                                    field="--chunks")
            chunks = tuple(min(c, n) for c, n in zip(args.chunks, shape, strict=True))
        # compute in the chunks that are stored, so each task writes whole zarr chunks
        iso = to_isotropic(img, target, order=args.order, mode=args.mode,
                           anti_alias=not args.no_anti_alias, device=args.device,
                           chunks=chunks)
        to_ome_zarr(iso, args.output, chunks=chunks, version=args.ngff_version,
                    pyramid=args.pyramid, overwrite=args.overwrite,
                    progress=progress_flag(args))
        vs = ", ".join(f"{d}={v:g}" for d, v in iso.vox.voxel_size.items())
        print(f"wrote {args.output}: shape {tuple(iso.shape)}, voxel size {vs}")
        if args.pyramid:
            from ..pyramid import format_plan, plan_pyramid

            print(format_plan(plan_pyramid(iso, chunks=chunks)))
        return 0

    return run
