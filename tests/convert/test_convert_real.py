"""vz.convert and vz.upgrade on the real files in tests/data (see tests/data/PROVENANCE.md)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import tifffile
import zarr

import voxzarr as vz


def _tiff(path):
    return tifffile.imread(path)


@pytest.mark.parametrize(
    ("name", "shape", "z", "yx", "unit", "xres"),
    [
        ("3d/Bead_Image1_crop.tif", (41, 150, 150), 0.125, 0.02249, "micrometer", 44460534),
        ("3d/DeconvolutionSampleVerticalGrid1AU-crop.tif", (21, 150, 150), 0.125, 0.02196,
         "micrometer", 45527587),
        ("3d/mini-t1-head.tif", (32, 32, 32), 1.5, 1.5, "millimeter", 666666),
    ],
)
def test_imagej_stacks(data_dir, tmp_path, name, shape, z, yx, unit, xres):
    out = vz.convert(data_dir / name, tmp_path / "o.zarr")
    img = vz.open_image(out)
    assert img.dims == ("z", "y", "x") and img.shape == shape
    vs = img.vox.voxel_size
    assert vs["z"] == z
    # the file stores y/x as 10**6 / XResolution; PROVENANCE.md rounds it to 4 digits
    assert math.isclose(vs["x"], 1e6 / xres, rel_tol=2e-6)
    assert math.isclose(vs["x"], yx, rel_tol=5e-4) and vs["y"] == vs["x"]
    assert set(img.vox.units.values()) == {unit}
    np.testing.assert_array_equal(img.values, _tiff(data_dir / name))


def test_mini_head_keeps_millimeter_exactly(data_dir, tmp_path):
    img = vz.open_image(vz.convert(data_dir / "3d/mini-t1-head.tif", tmp_path / "h.zarr"))
    assert img.vox.voxel_size == {"z": 1.5, "y": 1.5, "x": 1.5}
    assert img.vox.units == {"z": "millimeter", "y": "millimeter", "x": "millimeter"}


def test_hela_rgb_composite(data_dir, tmp_path):
    out = vz.convert(data_dir / "2d/hela-cells.tif", tmp_path / "hela.zarr")
    img = vz.open_image(out)
    assert img.dims == ("c", "y", "x") and img.shape == (3, 512, 672)
    assert math.isclose(img.vox.voxel_size["x"], 0.051493, rel_tol=1e-5)
    assert img.vox.units == {"y": "micrometer", "x": "micrometer"}
    np.testing.assert_array_equal(img.values, _tiff(data_dir / "2d/hela-cells.tif")
                                  .transpose(2, 0, 1))
    assert vz.validate(out).valid


@pytest.mark.parametrize("name", ["timelapse/membrane_2d_timelapse.tif",
                                  "timelapse/cancer_cell_migration_crop.tif"])
def test_timelapses_as_t(data_dir, tmp_path, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # these files carry no calibration at all
        out = vz.convert(data_dir / name, tmp_path / "t.zarr", axes="tyx", time_interval=1.0)
    img = vz.open_image(out)
    ref = _tiff(data_dir / name)
    assert img.dims == ("t", "y", "x") and img.shape == ref.shape
    assert img.vox.scale["t"] == 1.0 and img.vox.units["t"] == "second"
    np.testing.assert_array_equal(img.values, ref)


def test_upgrade_bioformats2raw_series(data_dir, tmp_path):
    src = data_dir / "ome-zarr/v0.4-bioformats2raw/fake-series-2.zarr"
    out = vz.upgrade(src, tmp_path / "fs.zarr")
    root = zarr.open_group(out, mode="r")
    assert root.metadata.zarr_format == 3
    assert root.attrs["ome"] == {"version": "0.5", "bioformats2raw.layout": 3}
    assert root["OME"].attrs["ome"] == {"version": "0.5", "series": ["0", "1"]}
    assert (out / "OME/METADATA.ome.xml").read_bytes() == (src / "OME/METADATA.ome.xml")\
        .read_bytes()
    ms = root["1"].attrs["ome"]["multiscales"][0]
    assert ms["metadata"] == {"method": "loci.common.image.SimpleImageScaler",
                              "version": "Bio-Formats 6.9.1"}
    assert [d["path"] for d in ms["datasets"]] == ["0", "1"]
    assert root["1/1"].metadata.dimension_names == ("t", "c", "z", "y", "x")
    for series in (0, 1):
        for level in (0, 1):
            a = vz.open_image(src, level, series=series)
            b = vz.open_image(out, level, series=series)
            assert a.shape == b.shape and a.vox.scale == b.vox.scale
            np.testing.assert_array_equal(a.values, b.values)
    assert vz.validate(out).valid


def test_upgrade_bioformats2raw_plate(data_dir, tmp_path):
    src = data_dir / "ome-zarr/v0.4-bioformats2raw/plate-rows-2.zarr"
    out = vz.upgrade(src, tmp_path / "plate.zarr")
    root = zarr.open_group(out, mode="r")
    old = zarr.open_group(src, mode="r")
    plate = {k: v for k, v in old.attrs["plate"].items() if k != "version"}
    assert root.attrs["ome"]["plate"] == plate
    assert root.attrs["ome"]["bioformats2raw.layout"] == 3
    assert root["A/1"].attrs["ome"]["well"] == {"images": [{"path": "0", "acquisition": 0}]}
    assert root["OME"].attrs["ome"]["series"] == ["A/1/0", "B/1/0"]
    for well, series in (("A/1", 0), ("B/1", 1)):
        a = vz.open_image(src, well=well)
        b = vz.open_image(out, well=well)
        c = vz.open_image(out, series=series)
        assert b.vox.units["x"] == "micrometer"
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(b.values, c.values)
    assert vz.validate(out).valid


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_legacy_stores_open_and_upgrade(data_dir, tmp_path, name):
    src = data_dir / "ome-zarr/legacy-v0.1-v0.2" / name
    img = vz.open_image(src)
    assert img.dims == ("t", "c", "z", "y", "x") and img.shape == (1, 2, 1, 16, 16)
    raw = zarr.open_array(src / "0", mode="r")[:]
    np.testing.assert_array_equal(img.values, raw)
    out = vz.upgrade(src, tmp_path / f"{name}.zarr")
    new = vz.open_image(out)
    np.testing.assert_array_equal(new.values, raw)
    assert zarr.open_group(out, mode="r").attrs["ome"]["multiscales"][0]["axes"][0] == {
        "name": "t", "type": "time"}
    assert vz.validate(out).valid
