"""Open, inspect and look at an OME-Zarr image: geometry from coordinates, projections, PNGs.

The first things to do with a stack: open it lazily, check its geometry and storage, and
look at it. This script converts the bundled bead stack (fluorescent beads, MPI-CBG Light
Microscopy Facility, CC-BY 4.0; see ``voxzarr/data/ATTRIBUTION.md``) to OME-Zarr (NGFF 0.5,
sharded) and shows:

- ``vz.open_image``: a lazy DataArray whose coordinates are physical pixel-centre positions,
  so voxel size, units, origin and extent are read from it, and stay right after slicing;
- ``vz.info``: chunks, shards, codecs and sizes, as ``voxzarr info`` prints them;
- ``img.vox.projections()``: XY, XZ and ZY maximum projections at true physical aspect. The
  stack is 5.6 times coarser in z than in x; drawn by voxel index its XZ view would be
  squashed, drawn by voxzarr it has the specimen's real proportions. A second, synthetic
  channel shows the colour composite and legend;
- ``img.vox.to_pngs``: one PNG per z plane, with one display range for all.

Run it with an output folder (default ``examples-output/open_inspect``)::

    python examples/open_inspect.py [OUTPUT_FOLDER]

It writes ``beads.ome.zarr``, ``projections.png``, ``projections_two_channels.png`` and
``planes/z0000.png`` ... into the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

import voxzarr as vz
from voxzarr.demo import sample_path


def main(out: Path) -> None:
    store = out / "beads.ome.zarr"
    vz.convert(sample_path(), store, chunks=(16, 64, 64), shards=(32, 128, 128),
               overwrite=True, progress=False)

    img = vz.open_image(store)  # lazy: nothing is read yet
    print(img)
    print()
    print("voxel size:", img.vox.voxel_size)
    print("units:     ", img.vox.units)
    print("origin:    ", img.vox.origin)
    print("extent:    ", {d: tuple(round(v, 4) for v in e) for d, e in img.vox.extent.items()})
    assert img.vox.voxel_size["z"] == 0.125 and img.vox.units["z"] == "micrometer"

    # geometry is derived from the coordinates, so slicing keeps it right
    sub = img[:, ::2, ::2]
    print("every 2nd y/x voxel -> voxel size", sub.vox.voxel_size)
    assert np.isclose(sub.vox.voxel_size["x"], 2 * img.vox.voxel_size["x"])

    print()
    report = vz.info(store)  # typed, and a JSON-ready dict; shown as the `voxzarr info` table
    print(vz.format_info(report))
    level0 = report["levels"][0]
    assert level0["chunks"] == [16, 64, 64] and level0["shards"] == [32, 128, 128], level0

    fig = img.vox.projections()  # computed chunk by chunk with dask
    fig.savefig(out / "projections.png", dpi=100)

    # a second channel: the beads shifted by 20 voxels along x
    shifted = img.roll(x=20, roll_coords=False)
    two = xr.concat([img, shifted], dim=xr.DataArray(["beads", "shifted"], dims="c"))
    two = two.transpose("c", "z", "y", "x")
    fig = two.vox.projections(vmax=[120, 120])
    fig.savefig(out / "projections_two_channels.png", dpi=100)

    paths = img.vox.to_pngs(out / "planes", vmin=0, vmax=int(np.asarray(img.max())),
                            overwrite=True)
    assert len(paths) == img.sizes["z"]
    print(f"wrote projections.png, projections_two_channels.png and {len(paths)} planes in "
          f"{out / 'planes'}")


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples-output/open_inspect")
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
