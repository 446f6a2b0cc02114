"""``voxzarr series-traces``: the time series of a few voxels, saved as a picture."""

from __future__ import annotations

import argparse

from ._core import Run, add_select, apply_select, command, open_level, save_figure


def _voxel_arg(text: str) -> dict[str, int]:
    """``"z=1,y=20,x=31"``: one voxel by index on every spatial axis."""
    try:
        return {k.strip(): int(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected z=I,y=J,x=K, found {text!r}") from None


@command("series-traces", "save the time series of a few voxels as a picture")
def setup(p: argparse.ArgumentParser) -> Run:
    p.add_argument("path", metavar="IN", help="OME-Zarr image or series store with a t axis")
    p.add_argument("out", metavar="OUT", help="picture to write (.png, .pdf, .svg)")
    p.add_argument("--voxel", type=_voxel_arg, action="append", metavar="z=I,y=J,x=K",
                   help="a voxel to draw, repeatable (default: --n voxels on a grid)")
    p.add_argument("--n", type=int, default=8, help="how many voxels without --voxel (8)")
    p.add_argument("--normalize", choices=("dff", "zscore"), default=None,
                   help="draw dF/F or z-scores instead of raw values")
    add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing picture")

    def run(args: argparse.Namespace) -> int:
        ser = apply_select(open_level(args.path, "0"), args.select)
        fig = ser.vox.series.plot(args.voxel, args.n, args.normalize)
        save_figure(fig, args.out, args.overwrite)
        print(f"wrote {args.out}: traces of {args.path}")
        return 0

    return run
