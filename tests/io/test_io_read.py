"""Reading every layout: bioformats2raw series, plates, legacy 0.1/0.2, 0.6rc0 transforms."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import zarr

import voxzarr as vz


def _bf2raw(data_dir):
    return data_dir / "ome-zarr" / "v0.4-bioformats2raw"


@pytest.mark.parametrize("series", [0, 1])
def test_bioformats2raw_series(data_dir, series):
    path = _bf2raw(data_dir) / "fake-series-2.zarr"
    img = vz.open_image(path, series=series)
    assert img.dims == ("t", "c", "z", "y", "x")
    assert img.shape == (1, 1, 1, 512, 512)
    assert img.dtype == np.uint8
    raw = zarr.open_array(path / str(series) / "0", mode="r")[:]
    np.testing.assert_array_equal(img.values, raw)
    tree = vz.open_multiscale(path, series=series)
    lv1 = tree.vox.level(1)
    assert lv1.shape == (1, 1, 1, 256, 256)
    assert lv1.vox.voxel_size["x"] == 2 * img.vox.voxel_size["x"]


@pytest.mark.parametrize("well", [None, "A/1", "B/1"])
def test_plate_field(data_dir, well):
    path = _bf2raw(data_dir) / "plate-rows-2.zarr"
    if well is None:  # the first well opens, with a note naming it (test_containers.py)
        with pytest.warns(UserWarning, match="opened well 'A/1' field 0"):
            img = vz.open_image(path, well=well, field=0)
    else:
        img = vz.open_image(path, well=well, field=0)
    raw = zarr.open_array(path / (well or "A/1") / "0" / "0", mode="r")[:]
    np.testing.assert_array_equal(img.values, raw)


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_legacy_versions(data_dir, name):
    path = data_dir / "ome-zarr" / "legacy-v0.1-v0.2" / name
    img = vz.open_image(path)
    assert img.dims == ("t", "c", "z", "y", "x")
    assert img.shape == (1, 2, 1, 16, 16)
    np.testing.assert_array_equal(img.values, zarr.open_array(path / "0", mode="r")[:])


def _strip_comments(text: str) -> str:
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def test_v06_sequence_transforms(tmp_path, ngff_dir):
    """0.6rc0: coordinateSystems plus scale / sequence(scale, translation) per level."""
    example = (ngff_dir / "dev-0.6rc0" / "examples" / "multiscales_strict"
               / "multiscales_example.json")
    meta = json.loads(_strip_comments(example.read_text()))
    attrs = meta["attributes"]
    root = zarr.open_group(tmp_path / "v06.zarr", mode="w", zarr_format=3)
    shapes = {"s0": (2, 1, 8, 8, 8), "s1": (2, 1, 4, 4, 4), "s2": (2, 1, 2, 2, 2)}
    for p, shape in shapes.items():
        root.create_array(p, shape=shape, dtype="uint8", chunks=shape)
        root[p][:] = np.arange(np.prod(shape), dtype="uint8").reshape(shape) % 251
    root.attrs.update(attrs)
    tree = vz.open_multiscale(tmp_path / "v06.zarr")
    lv0, lv1, lv2 = (tree.vox.level(i) for i in range(3))
    assert lv0.vox.voxel_size == {"z": 0.5, "y": 0.5, "x": 0.5}
    assert lv0.vox.scale["t"] == 0.1
    assert lv0.vox.units["t"] == "millisecond"
    assert lv1.vox.voxel_size == {"z": 1.0, "y": 1.0, "x": 1.0}
    assert lv1.vox.origin["z"] == 0.25
    assert lv2.vox.origin["x"] == 0.75
    # the half-voxel rule holds: k = 2 -> (k - 1) * s0 / 2 = 0.25
    assert lv1.vox.extent["x"] == lv0.vox.extent["x"]


def test_omero_channel_labels(tmp_path):
    img = vz.from_array(np.zeros((3, 4, 4), "uint8"), "cyx", voxel_size=1,
                        channel_names=["a", "b", "c"])
    img.vox.to_ome_zarr(tmp_path / "c.ome.zarr")
    assert list(vz.open_image(tmp_path / "c.ome.zarr").c.values) == ["a", "b", "c"]


def test_open_is_lazy(tmp_path):
    from voxzarr.testing import raise_if_dask_computes

    img = vz.from_array(np.ones((4, 8, 8), "uint8"), "zyx", voxel_size=1)
    img.vox.to_ome_zarr(tmp_path / "l.ome.zarr")
    with raise_if_dask_computes():
        lazy = vz.open_image(tmp_path / "l.ome.zarr")
        sub = lazy[:, ::2, 1::2]
        assert sub.vox.voxel_size == {"z": 1.0, "y": 2.0, "x": 2.0}


def test_boxes_of_an_opened_image_read_directly(tmp_path):
    """``.values`` of the image as opened and of any box of it (isel with step-1 slices,
    nested) reads through the direct path; other selections are plain dask; all equal."""
    from voxzarr._chunkread import StoredArray

    rng = np.random.default_rng(5)
    data = rng.integers(0, 4000, size=(9, 40, 33), dtype="uint16")
    vz.from_array(data, "zyx", voxel_size=1.0).vox.to_ome_zarr(
        tmp_path / "a.ome.zarr", chunks=(4, 16, 16), progress=False)
    img = vz.open_image(tmp_path / "a.ome.zarr")
    assert isinstance(img.data, StoredArray)
    np.testing.assert_array_equal(img.values, data)
    box = img.isel(z=slice(2, 8), y=slice(5, 39), x=slice(-20, None))
    assert isinstance(box.data, StoredArray)
    np.testing.assert_array_equal(box.values, data[2:8, 5:39, -20:])
    inner = box.isel(y=slice(3, 4))
    assert isinstance(inner.data, StoredArray)
    np.testing.assert_array_equal(inner.values, data[2:8, 8:9, -20:])
    np.testing.assert_array_equal(inner.compute().values, data[2:8, 8:9, -20:])
    for other, want in ((img.isel(z=slice(None, None, 2)), data[::2]),
                        (img.isel(z=3), data[3]), (img + 1, data + 1)):
        assert not isinstance(other.data, StoredArray)
        np.testing.assert_array_equal(other.values, want)


def test_compute_of_an_opened_image_is_one_direct_read(tmp_path, monkeypatch):
    """``compute()`` of an opened image or a box of it reads the box once (like ``.values``)
    and returns it without concatenating chunks; computed beside a derived array, both are
    right; with ``optimize_graph=False`` the per-chunk graph gives the same values."""
    import dask

    from voxzarr import _chunkread

    rng = np.random.default_rng(6)
    data = rng.integers(0, 4000, size=(9, 40, 33), dtype="uint16")
    vz.from_array(data, "zyx", voxel_size=1.0).vox.to_ome_zarr(
        tmp_path / "a.ome.zarr", chunks=(4, 16, 16), progress=False)
    img = vz.open_image(tmp_path / "a.ome.zarr")
    boxes = []
    real = _chunkread._read_box
    monkeypatch.setattr(_chunkread, "_read_box",
                        lambda reader, box: boxes.append(box) or real(reader, box))
    np.testing.assert_array_equal(img.compute().values, data)
    assert boxes == [(slice(0, 9), slice(0, 40), slice(0, 33))]
    boxes.clear()
    sub = img.isel(z=slice(1, 7), x=slice(5, 30))
    got = sub.data.compute()
    np.testing.assert_array_equal(got, data[1:7, :, 5:30])
    assert boxes == [(slice(1, 7), slice(0, 40), slice(5, 30))]
    assert got.base is None or got.base.shape == got.shape  # the read itself, not a copy
    boxes.clear()
    a, b = dask.compute(img.data, img.data.astype("int32") + 1)
    np.testing.assert_array_equal(a, data)
    np.testing.assert_array_equal(b, data.astype("int32") + 1)
    boxes.clear()
    np.testing.assert_array_equal(dask.compute(img.data, optimize_graph=False)[0], data)
    assert boxes == []
