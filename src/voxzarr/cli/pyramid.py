"""``voxzarr pyramid``: add multiscale levels to an image or its labels, or print the
plan with ``--dry-run`` (:func:`voxzarr.pyramid.add_levels`).
"""

from __future__ import annotations

import argparse

from ._core import PYRAMID_METHODS, Run, add_progress, command, progress_flag


@command("pyramid", "add multiscale levels to an OME-Zarr image (level 0 is not rewritten)")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", help="OME-Zarr image (NGFF 0.4 or 0.5)")
    p.add_argument("--levels", type=int, default=None,
                   help="number of levels including level 0 (default: halve until an axis "
                   "would go under --min-size)")
    # the registry's live view: plug-in methods are accepted too; metavar keeps argparse
    # from listing (and so discovering entry points) while it builds the parser
    p.add_argument("--method", default=None, choices=PYRAMID_METHODS, metavar="METHOD",
                   help="mean (default), gaussian, nearest|stride, mode (default for labels), "
                   "min, max, median, or a registered method")
    p.add_argument("--factors", default=None,
                   help="explicit factors per level, levels separated by ';': '1,2,2;2,2,2' "
                   "(z,y,x), 'z=1,y=2,x=2' or '2' (default: anisotropy-aware halving)")
    p.add_argument("--min-size", type=int, default=None,
                   help="never halve an axis below this many voxels (default: one chunk, at "
                   "most 256)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--label", default=None, help="build labels/<LABEL> instead of the image")
    p.add_argument("--labels", action="store_true",
                   help="also build the pyramid of every labels/<name> (method mode)")
    p.add_argument("--overwrite", action="store_true",
                   help="rebuild when the image already has levels above 0")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from ..pyramid import add_levels, format_plan, label_names, parse_factors, plan_for

        opts = dict(levels=args.levels, method=args.method, min_size=args.min_size,
                    factors=None if args.factors is None else parse_factors(args.factors))
        targets = [args.label] + (label_names(args.path) if args.labels else [])
        for label in targets:
            what = args.path if label is None else f"{args.path} labels/{label}"
            if args.dry_run:
                print(f"{what}: plan (dry run)")
                print(format_plan(plan_for(args.path, label=label, **opts)))
                continue
            plan = add_levels(args.path, device=args.device, label=label,
                              overwrite=args.overwrite, progress=progress_flag(args),
                              **opts)
            print(f"{what}: wrote {plan.n_levels - 1} level(s)")
            if plan.n_levels == 1:
                print(f"{what}: no level written: the image {plan.shapes[0]} is no larger "
                      "than --min-size along any axis (default: one chunk, at most 256 "
                      "voxels); ask for levels with --levels N or a smaller --min-size")
            print(format_plan(plan))
        return 0

    return run
