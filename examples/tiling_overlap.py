"""Tiling with overlap: why chunked filters leave seams, and how a halo store removes them.

A filter run chunk by chunk only sees the voxels of its own chunk, so near every chunk border
it smooths against a wall instead of the neighbouring voxels: the result has *seams*. Giving
each chunk an overlap (a halo) of its neighbours' voxels removes them, once the overlap
reaches the filter's radius. This script walks through that on the bundled bead stack
(fluorescent beads, MPI-CBG Light Microscopy Facility, CC-BY 4.0; see
``voxzarr/data/ATTRIBUTION.md``):

1. the seam experiment: a Gaussian (sigma 3 voxels) run chunk by chunk with dask's
   ``map_overlap`` and growing overlap 0, 2, 4, ... voxels, against the same Gaussian on the
   whole image; the largest difference falls to exactly zero at the filter radius;
2. ``img.vox.find_halo_depth(fn)`` finds that smallest seam-free depth for any block
   function, by the same experiment on a few sample regions;
3. ``img.vox.to_halo`` stores each chunk with its halo beside the OME-Zarr image, and
   ``img.vox.filter`` / ``vz.open_halo(...).map_blocks`` then filter with one read per chunk
   and give exactly the whole-image result;
4. ``voxzarr.halo.write_region`` writes new pixels and rebuilds only the halo blocks that
   see them, so the halo never goes stale.

Run it with an output folder (default ``examples-output/tiling_overlap``)::

    python examples/tiling_overlap.py [OUTPUT_FOLDER]

It writes ``seams.png`` (the seams at overlap 0 and the largest difference against
overlap), ``halo_depth.png`` (the figure of ``find_halo_depth``'s report) and
``beads.ome.zarr`` (the image with its halo store) into the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dask.array as da
import numpy as np
import scipy.ndimage as ndi
from matplotlib.figure import Figure

import voxzarr as vz
from voxzarr.demo import load_sample
from voxzarr.halo import write_region

SIGMA = 3.0  # voxels, every axis
RADIUS = int(4.0 * SIGMA + 0.5)  # scipy's kernel radius for its default truncate=4
CHUNKS = (16, 64, 64)


def smooth(block: np.ndarray) -> np.ndarray:
    """The block function: a Gaussian with scipy's ``reflect`` mode at the block edge."""
    return ndi.gaussian_filter(block, SIGMA, mode="reflect")


def seam_figure(seams: np.ndarray, overlaps: list[int], diffs: list[float],
                depth: int) -> Figure:
    """|chunked - whole| on the middle plane at overlap 0, and max |diff| by overlap."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    mid = seams.shape[0] // 2
    shown = left.imshow(seams[mid], cmap="magma", interpolation="nearest")
    for k in range(CHUNKS[1], seams.shape[1], CHUNKS[1]):  # chunk borders
        left.axhline(k - 0.5, color="white", lw=0.5, ls=":")
    for k in range(CHUNKS[2], seams.shape[2], CHUNKS[2]):
        left.axvline(k - 0.5, color="white", lw=0.5, ls=":")
    left.set_title(f"overlap 0: |chunked - whole|, plane z={mid}")
    left.set_xlabel("x (voxels)")
    left.set_ylabel("y (voxels)")
    fig.colorbar(shown, ax=left, shrink=0.8)
    floor = 1e-9  # exact zeros drawn at the bottom of the log axis
    right.semilogy(overlaps, [max(d, floor) for d in diffs], marker="o")
    right.axvline(depth, color="tab:green", ls="--", label=f"find_halo_depth: {depth}")
    right.set_xlabel("overlap (voxels)")
    right.set_ylabel("max |chunked - whole| (exact 0 drawn at 1e-9)")
    right.set_title(f"Gaussian sigma {SIGMA:g}, chunks {CHUNKS}")
    right.legend()
    return fig


def main(out: Path) -> None:
    img = load_sample().astype(np.float32)  # float: differences are not hidden by rounding
    arr = img.values
    whole = smooth(arr)

    # 1. the seam experiment, by hand with dask
    chunked = da.from_array(arr, chunks=CHUNKS)
    overlaps = list(range(0, RADIUS + 5, 2))
    diffs, seams = [], None
    for overlap in overlaps:
        # boundary="none": at the image edge a chunk sees the true edge, as the whole does
        res = chunked.map_overlap(smooth, depth=overlap, boundary="none",
                                  dtype=np.float32).compute()
        diff = np.abs(res - whole)
        seams = diff if seams is None else seams
        diffs.append(float(diff.max()))
        print(f"overlap {overlap:2d} voxels: max |chunked - whole| = {diffs[-1]:.3g}")
    assert seams is not None and diffs[0] > 1.0, "overlap 0 must show seams"
    assert all((d == 0.0) == (o >= RADIUS) for o, d in zip(overlaps, diffs, strict=True)), (
        "seam-free exactly from the filter radius on")

    # 2. the same answer, found automatically (only a few sample regions are read)
    report = img.chunk(dict(zip(img.dims, CHUNKS, strict=True))).vox.find_halo_depth(
        smooth, max_depth=32)
    print(f"find_halo_depth: {report}")
    assert report.depth == RADIUS, report
    seam_figure(seams, overlaps, diffs, report.depth).savefig(out / "seams.png", dpi=80)
    report.figure(img, smooth, depths=[0, 6, report.depth]).savefig(
        out / "halo_depth.png", dpi=80)

    # 3. a halo store: each chunk stored with its neighbours' border voxels
    path = out / "beads.ome.zarr"
    img.vox.to_ome_zarr(path, chunks=CHUNKS, overwrite=True, progress=False)
    vz.open_image(path).vox.to_halo(path, depth=report.depth, progress=False)
    halo = vz.open_halo(path)
    print(halo)
    b = halo.block((0, 1, 2))  # what one read returns: the core plus real halo voxels
    print(f"block (0, 1, 2): {b.data.shape} voxels read, core at {b.core} in it, "
          f"cut at the image edge by (before, after) {b.outside}")
    filtered = vz.open_image(path).vox.filter("gaussian", sigma=SIGMA, halo="require")
    any_fn = halo.map_blocks(smooth)  # any block function, one read per chunk
    err_filter = float(np.abs(filtered.values - whole).max())
    err_map = float(np.abs(any_fn.values - whole).max())
    print(f"halo store, {filtered.data.npartitions} chunks: max |filter - whole| = "
          f"{err_filter}, max |map_blocks - whole| = {err_map}")
    assert err_filter == 0.0 and err_map == 0.0

    # 4. writing pixels rebuilds just the halo blocks that see them
    patch = np.full((2, 10, 30), 255, np.float32)
    region = (slice(20, 22), slice(70, 80), slice(60, 90))
    rep = write_region(path, region, patch)
    arr[region] = patch
    again = vz.open_image(path).vox.filter("gaussian", sigma=SIGMA, halo="require")
    exact = np.array_equal(again.values, smooth(arr))
    print(f"after write_region: {sum(rep.rebuilt.values())} of {int(np.prod(halo.numblocks))} halo "
          f"blocks rebuilt, generation {rep.generation}; still exact: {exact}")
    assert exact
    print(f"seam-free at depth {report.depth}: halo store result identical to the whole "
          f"image: True")


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples-output/tiling_overlap")
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
    print(f"wrote {folder}")
