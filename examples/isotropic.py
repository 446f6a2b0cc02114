"""Scaling to isotropy: resample an anisotropic stack to cubic voxels, with a zoom factor.

Microscope stacks are usually coarser along z than in the plane: the bundled bead stack
(fluorescent beads, MPI-CBG Light Microscopy Facility, CC-BY 4.0; see
``voxzarr/data/ATTRIBUTION.md``) has voxels of 0.125 x 0.0225 x 0.0225 micrometre, 5.6 times
longer along z. Measuring distances, shapes or angles, or running 3-D filters, wants cubic
voxels. ``img.vox.to_isotropic(voxel_size=v, zoom=f)`` resamples every spatial axis to a
spacing of ``v / f`` (``v`` defaults to the finest spacing), lazily and chunk by chunk; a
zoom below 1 gives fewer, bigger voxels (a smaller volume to work on), above 1 more.

The script shows:

- the shape rule ``round(n * s / (v / f))`` per axis and the voxel sizes, for a few zooms;
- that the grid keeps the stack's lower edge (the first voxel centre moves by
  ``(s' - s) / 2``), so the resampled stack covers the same physical box;
- that the chunked result equals ``scipy.ndimage`` on the whole array (after the same
  anti-aliasing of downsampled axes), and that the ``voxzarr isotropic`` command line,
  streaming OME-Zarr to OME-Zarr, gives the same voxels;
- the XY, XZ and ZY maximum projections before and after, drawn at true physical aspect by
  ``img.vox.projections()``: both look alike, as the specimen does.

Run it with an output folder (default ``examples-output/isotropic``)::

    python examples/isotropic.py [OUTPUT_FOLDER]

It writes ``projections_before.png``, ``projections_after.png``, ``beads.ome.zarr`` and
``beads-iso.ome.zarr`` into the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

import voxzarr as vz
from voxzarr.cli import main as voxzarr_cli
from voxzarr.demo import load_sample

ZOOM = 0.5  # half the finest spacing's resolution: 0.045 micrometre voxels


def scipy_reference(data: np.ndarray, factors: np.ndarray, shape: tuple[int, ...]
                    ) -> np.ndarray:
    """What voxzarr computes, done by scipy on the whole array.

    Axes that are downsampled by ``k`` are Gaussian-smoothed with sigma ``(k - 1) / 2``
    first; output voxel ``o`` reads input position ``k * o + (k - 1) / 2`` (the grid starts
    at the lower edge), linear interpolation, ``nearest`` at the border, rounded to uint8.
    """
    smooth = data.astype(np.float64)
    for ax, k in enumerate(factors):
        if k > 1:
            smooth = ndi.gaussian_filter1d(smooth, (k - 1) / 2, axis=ax, mode="nearest")
    ref = ndi.affine_transform(smooth, np.diag(factors), (factors - 1) / 2,
                               output_shape=shape, order=1, mode="nearest")
    return np.clip(np.floor(ref + 0.5), 0, 255).astype(np.uint8)


def main(out: Path) -> None:
    sample = load_sample()  # geometry from the TIFF's ImageJ tags
    src = out / "beads.ome.zarr"
    sample.vox.to_ome_zarr(src, chunks=(16, 64, 64), overwrite=True, progress=False)
    img = vz.open_image(src)  # lazy and chunked, as a big stack would be
    voxel = img.vox.voxel_size
    print(f"input       shape {img.shape}  voxel size "
          f"{ {d: round(v, 5) for d, v in voxel.items()} } {img.vox.units['x']}")

    finest = min(voxel.values())
    for zoom in (1.0, ZOOM, 2.0):
        iso = img.vox.to_isotropic(zoom=zoom)  # nothing is computed yet
        side = finest / zoom
        expect = tuple(round(n * voxel[d] / side) for d, n in zip(img.dims, img.shape,
                                                                   strict=True))
        print(f"zoom {zoom:<5g}  shape {iso.shape}  voxel size {iso.vox.voxel_size['x']:.5f} "
              f"on every axis")
        assert iso.shape == expect, (iso.shape, expect)
        assert all(np.isclose(v, side) for v in iso.vox.voxel_size.values())

    iso = img.vox.to_isotropic(zoom=ZOOM)
    lo_in, lo_out = img.vox.extent["z"][0], iso.vox.extent["z"][0]
    print(f"lower edge along z kept: {lo_in:.5f} -> {lo_out:.5f} um; first voxel centre "
          f"{img.vox.origin['z']:.5f} -> {iso.vox.origin['z']:.5f} um")
    assert np.isclose(lo_in, lo_out)

    # chunked equals whole: input voxels per output voxel, per axis
    factors = np.array([iso.vox.voxel_size[d] / voxel[d] for d in img.dims])
    same = np.array_equal(iso.values, scipy_reference(img.values, factors, iso.shape))
    print(f"chunked result ({iso.data.npartitions} chunks) equals scipy on the whole array: "
          f"{same}")
    assert same

    dst = out / "beads-iso.ome.zarr"
    voxzarr_cli(["isotropic", str(src), str(dst), "--zoom", str(ZOOM), "--overwrite",
                 "--no-progress"])
    cli_same = np.array_equal(vz.open_image(dst).values, iso.values)
    print(f"command line result equals the lazy one: {cli_same}")
    assert cli_same

    img.vox.projections(title="before: anisotropic").savefig(
        out / "projections_before.png", dpi=80)
    iso.vox.projections(title=f"after: to_isotropic(zoom={ZOOM:g})").savefig(
        out / "projections_after.png", dpi=80)


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples-output/isotropic")
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
    print(f"wrote {folder}")
