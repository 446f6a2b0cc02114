"""Converting an archive: TIFF stacks and frame folders to OME-Zarr, NGFF 0.4 stores to 0.5.

Archives hold images in older forms: one multi-page TIFF per stack, a folder with one TIFF
per plane or timepoint, or OME-Zarr written as NGFF 0.4 on zarr v2. ``vz.convert`` turns the
first two into NGFF 0.5 (zarr v3), streaming in bounded memory and checking the result
before moving it into place; ``vz.upgrade`` moves a 0.4 store to 0.5 with sharding by
copying the encoded chunk bytes (nothing is decoded); ``vz.validate`` checks what was
written against the NGFF schemas and the specification text.

The script works on the bundled bead stack (fluorescent beads, MPI-CBG Light Microscopy
Facility, CC-BY 4.0; see ``voxzarr/data/ATTRIBUTION.md``):

1. the ImageJ TIFF itself: its voxel size and unit come from the ImageJ tags;
2. the same stack as a folder of one TIFF per z plane (written here, named ``plane_0.tif``,
   ``plane_1.tif``, ... ``plane_40.tif``: natural order, so ``plane_2`` comes before
   ``plane_10``); plain frames carry no geometry, so ``axes``, ``voxel_size`` and ``unit``
   are given, and the result must equal step 1 voxel for voxel;
3. an NGFF 0.4 / zarr v2 copy upgraded to 0.5 with shards, pixels compared;
4. in a checkout (``tests/data``), a real bioformats2raw 0.4 store
   (``ome-zarr/v0.4-bioformats2raw/fake-series-2.zarr``, from ome-zarr-py's tests, BSD-2)
   upgraded as well, both of its series; skipped otherwise.

Every result is validated and described as ``voxzarr info`` prints it. Run it with an output
folder (default ``examples-output/convert_archive``)::

    python examples/convert_archive.py [OUTPUT_FOLDER]

It writes the stores and ``converted.png`` (projections of the frame-folder result at true
physical aspect) and ``upgraded.png`` (the upgraded stack) into the folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile

import voxzarr as vz
from voxzarr.demo import sample_path

BF2RAW = (Path(__file__).resolve().parents[1]
          / "tests/data/ome-zarr/v0.4-bioformats2raw/fake-series-2.zarr")


def report(path: Path) -> vz.ValidationResult:
    """Validate ``path``, print the verdict and the ``voxzarr info`` table."""
    result = vz.validate(path)  # errors make it invalid; SHOULD-level findings are warnings
    print(result.message.splitlines()[0])
    print(vz.format_info(vz.info(path)))
    print()
    return result


def main(out: Path) -> None:
    # 1. one ImageJ TIFF: geometry from its tags
    stack = out / "beads.ome.zarr"
    vz.convert(sample_path(), stack, chunks=(16, 64, 64), overwrite=True, progress=False)
    assert report(stack).valid
    img = vz.open_image(stack)
    voxel, units = img.vox.voxel_size, img.vox.units
    assert voxel["z"] == 0.125 and units["x"] == "micrometer", (voxel, units)

    # 2. a folder of frames, one TIFF per z plane
    frames = out / "frames"
    frames.mkdir(exist_ok=True)
    pixels = img.values
    for k, plane in enumerate(pixels):
        tifffile.imwrite(frames / f"plane_{k}.tif", plane)
    folder = out / "frames.ome.zarr"
    vz.convert(frames, folder, axes="zyx", voxel_size=voxel, unit="micrometer",
               chunks=(16, 64, 64), overwrite=True, progress=False)
    assert report(folder).valid
    converted = vz.open_image(folder)
    same = (np.array_equal(converted.values, pixels)
            and converted.vox.voxel_size == voxel)
    print(f"{len(pixels)} frames -> {converted.shape}, voxel size "
          f"{ {d: round(v, 5) for d, v in converted.vox.voxel_size.items()} }: "
          f"equal to the converted stack: {same}\n")
    assert same
    converted.vox.projections(title=f"{len(pixels)} TIFF frames -> OME-Zarr 0.5").savefig(
        out / "converted.png", dpi=80)

    # 3. NGFF 0.4 (zarr v2) -> 0.5 (zarr v3, sharded)
    old = out / "beads-v0.4.ome.zarr"
    img.vox.to_ome_zarr(old, version="0.4", chunks=(16, 64, 64), overwrite=True,
                        progress=False)
    assert report(old).valid
    new = out / "beads-v0.5.ome.zarr"
    vz.upgrade(old, new, shards=(32, 128, 128), overwrite=True, progress=False)
    assert report(new).valid
    upgraded = vz.open_image(new)
    same = np.array_equal(upgraded.values, pixels) and upgraded.vox.voxel_size == voxel
    print(f"upgraded 0.4 -> 0.5: {sorted(p.name for p in new.iterdir())}; pixels and "
          f"geometry unchanged: {same}\n")
    assert same
    upgraded.vox.projections(title="NGFF 0.4 -> 0.5 (sharded)").savefig(
        out / "upgraded.png", dpi=80)

    # 4. a real bioformats2raw 0.4 store, from the checkout's test data
    if not BF2RAW.exists():
        print(f"skipped the bioformats2raw upgrade: {BF2RAW.name} is not here")
        return
    dest = out / "fake-series-2.ome.zarr"
    vz.upgrade(BF2RAW, dest, overwrite=True, progress=False)
    assert report(dest).valid
    for series in (0, 1):
        before = vz.open_image(BF2RAW, series=series)
        after = vz.open_image(dest, series=series)
        assert np.array_equal(before.values, after.values)
        print(f"bioformats2raw series {series}: {dict(after.sizes)} {after.dtype}, "
              f"pixels unchanged: True")


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "examples-output/convert_archive")
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
    print(f"wrote {folder}")
