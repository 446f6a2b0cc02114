"""ndinterp: scipy.ndimage's interpolation on chunked (dask) volumes, with the same result.

``voxzarr.ndinterp`` provides ``affine_transform``, ``rotate``, ``map_coordinates`` and
``spline_filter`` for dask arrays, with scipy.ndimage's parameters and meaning (index units,
the output voxel ``o`` reads the input at ``matrix @ o + offset``). Each output chunk is one
task that reads only the input blocks it needs, so volumes larger than memory can be
transformed; every scipy boundary mode and spline orders 0-5 work, with a chunked spline
prefilter deep enough for float32 precision. ``img.vox.affine`` / ``img.vox.rotate`` build
on these in physical units; use ``ndinterp`` directly for index-space work on plain arrays.

This script runs three transforms on the bundled bead stack (fluorescent beads, MPI-CBG Light
Microscopy Facility, CC-BY 4.0; see ``voxzarr/data/ATTRIBUTION.md``) as float32, split into
(16, 64, 64) chunks, and compares each with scipy.ndimage on the whole array:

- ``affine_transform``: a rotation about z with a shear, cubic splines (order 3);
- ``rotate``: 30 degrees in the y-x plane, output enlarged to hold the whole input;
- ``map_coordinates``: a smooth sinusoidal warp field, itself a chunked dask array.

The largest difference is printed and must stay within float32 rounding. Run it with an
output folder (default ``examples-output/chunked_interpolation``)::

    python examples/chunked_interpolation.py [OUTPUT_FOLDER]

It writes ``ndinterp.png``: per transform, the input, the chunked result (chunk borders
dotted) and the difference from scipy, as maximum projections along z.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dask.array as da
import numpy as np
import scipy.ndimage as ndi
from matplotlib.figure import Figure

from voxzarr import ndinterp
from voxzarr.demo import load_sample

CHUNKS = (16, 64, 64)


def transforms(arr: np.ndarray) -> dict[str, tuple[da.Array, np.ndarray]]:
    """Each transform as (chunked voxzarr result, scipy result on the whole array)."""
    vol = da.from_array(arr, chunks=CHUNKS)
    out = {}

    # rotate 20 degrees about z and shear z along x; offset keeps the beads in view
    c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.1, s, c]])
    offset = np.array([0.0, 20.0, -20.0])
    out["affine_transform, order 3"] = (
        ndinterp.affine_transform(vol, matrix, offset, order=3, mode="nearest"),
        ndi.affine_transform(arr, matrix, offset, order=3, mode="nearest"))

    out["rotate 30 deg, reshape"] = (
        ndinterp.rotate(vol, 30.0, axes=(1, 2), reshape=True, order=1),
        ndi.rotate(arr, 30.0, axes=(1, 2), reshape=True, order=1))

    # a warp: every voxel reads from a place shifted by up to 6 voxels in y and x
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in arr.shape), indexing="ij")
    coords = np.stack([z, y + 6 * np.sin(2 * np.pi * x / 75), x + 6 * np.sin(2 * np.pi * y / 75)])
    out["map_coordinates, order 3"] = (
        ndinterp.map_coordinates(vol, da.from_array(coords, chunks=(3, *CHUNKS)), order=3,
                                 mode="reflect"),
        ndi.map_coordinates(arr, coords, order=3, mode="reflect"))
    return out


def main(out: Path) -> None:
    arr = load_sample().values.astype(np.float32)
    tol = float(np.finfo(np.float32).eps) * float(np.abs(arr).max())  # float32 rounding
    fig = Figure(figsize=(10, 10), layout="constrained")
    rows = fig.subplots(3, 3)
    for (name, (lazy, ref)), (left, mid, right) in zip(transforms(arr).items(), rows,
                                                         strict=True):
        res = lazy.compute()  # one task per output chunk
        diff = np.abs(res - ref)
        err = float(diff.max())
        print(f"{name:26s} {lazy.npartitions:3d} chunks, output {res.shape}: "
              f"max |chunked - scipy| = {err:.3g}")
        assert res.shape == ref.shape and res.dtype == ref.dtype
        assert err <= tol, f"{name}: {err} exceeds float32 rounding {tol}"

        # maximum projections along z: every bead in view
        src, got, dif = arr.max(axis=0), res.max(axis=0), diff.max(axis=0)
        vmax = float(np.percentile(src, 99.9))
        left.imshow(src, cmap="gray", vmin=0, vmax=vmax)
        left.set_title("input (z max projection)", fontsize=9)
        mid.imshow(got, cmap="gray", vmin=0, vmax=vmax)
        for k in np.cumsum(lazy.chunks[1])[:-1]:
            mid.axhline(k - 0.5, color="tab:orange", lw=0.6, ls=":")
        for k in np.cumsum(lazy.chunks[2])[:-1]:
            mid.axvline(k - 0.5, color="tab:orange", lw=0.6, ls=":")
        mid.set_title(f"{name}: chunked", fontsize=9)
        shown = right.imshow(dif, cmap="magma", vmin=0, vmax=max(tol, err))
        right.set_title(f"|chunked - scipy|, max {err:.2g}", fontsize=9)
        fig.colorbar(shown, ax=right, shrink=0.8)
    fig.savefig(out / "ndinterp.png", dpi=70)
    print(f"all within float32 rounding ({tol:.2g}): True")


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples-output/chunked_interpolation")
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
    print(f"wrote {folder}")
