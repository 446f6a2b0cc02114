"""Bad input gives a VoxzarrError naming path and field, and nothing is written or lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import voxzarr as vz
from voxzarr.errors import (
    ArgumentError,
    ChunkError,
    GeometryError,
    MetadataError,
    OverwriteError,
    StoreError,
    VoxzarrError,
)


@pytest.fixture
def store(tmp_path) -> Path:
    img = vz.from_array(np.arange(4 * 8 * 8, dtype="uint16").reshape(4, 8, 8), "zyx",
                        voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})
    path = tmp_path / "img.ome.zarr"
    img.vox.to_ome_zarr(path, chunks=(2, 4, 4))
    return path


def _edit_attrs(path: Path, fn) -> None:
    meta = json.loads((path / "zarr.json").read_text())
    fn(meta["attributes"]["ome"])
    (path / "zarr.json").write_text(json.dumps(meta))


def _ds(ome):
    return ome["multiscales"][0]["datasets"][0]["coordinateTransformations"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: _ds(o)[0].update(scale=[1.0, 1.0]),
         "datasets[0].coordinateTransformations[0].scale"),
        (lambda o: _ds(o)[0].update(scale=[0.0, 1.0, 1.0]), "scale"),
        (lambda o: _ds(o)[0].update(scale=[-1.0, 1.0, 1.0]), "scale"),
        (lambda o: _ds(o)[0].update(scale=["NaN", 1.0, 1.0]), "scale"),
        (lambda o: o["multiscales"][0]["axes"][0].update(name="angle"), "axes[0].name"),
        (lambda o: o["multiscales"][0]["axes"][2].update(name="z"), "axes"),
        (lambda o: o["multiscales"][0]["axes"][1].update(type="time"), "axes[1].type"),
        (lambda o: _ds(o).insert(0, {"type": "translation", "translation": [0, 0, 0]}),
         "coordinateTransformations"),
        (lambda o: o["multiscales"][0]["datasets"][0].update(path="missing"), "datasets[0].path"),
        (lambda o: o.pop("multiscales"), "multiscales"),
    ],
)
def test_bad_metadata_names_path_and_field(store, mutate, field):
    _edit_attrs(store, mutate)
    with pytest.raises(VoxzarrError) as info:
        vz.open_image(store)
    err = info.value
    assert err.path is not None and str(store) in err.path
    assert err.field is not None and field in err.field, err.field
    assert str(store) in str(err)


def test_unknown_unit_is_read_without_it_and_said(store):
    # NGFF: units SHOULD be UDUNITS names; validate warns, so reading must not refuse
    _edit_attrs(store, lambda o: o["multiscales"][0]["axes"][0].update(unit="furlong"))
    with pytest.warns(UserWarning, match=r"axes\[0\].unit: unknown unit 'furlong'.*without"):
        img = vz.open_image(store)
    assert img.vox.units[img.dims[0]] is None
    assert vz.validate(store).valid


def test_nan_scale_is_an_error(store):
    meta = json.loads((store / "zarr.json").read_text())
    text = json.dumps(meta).replace('"scale": [2.0,', '"scale": [NaN,')
    (store / "zarr.json").write_text(text)
    with pytest.raises(MetadataError, match="non-finite"):
        vz.open_image(store)


def test_malformed_json(store):
    (store / "zarr.json").write_text("{ not json")
    with pytest.raises(StoreError) as info:
        vz.open_image(store)
    assert str(store) in str(info.value)


def test_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no such"):
        vz.open_image(tmp_path / "nope.ome.zarr")


def test_levels_of_different_dtype(store):
    zarr.create_array(store, name="1", shape=(4, 4, 4), dtype="float32", chunks=(4, 4, 4))
    def add_level(o):
        o["multiscales"][0]["datasets"].append(
            {"path": "1", "coordinateTransformations": [
                {"type": "scale", "scale": [2.0, 1.0, 1.0]}]})
    _edit_attrs(store, add_level)
    with pytest.raises(MetadataError, match="different dtypes") as info:
        vz.open_multiscale(store)
    assert info.value.field == "multiscales[0].datasets"


def test_corrupt_chunk_names_chunk(store):
    chunk = store / "0" / "c" / "1" / "0" / "1"
    assert chunk.exists()
    chunk.write_bytes(b"garbage bytes, not blosc")
    img = vz.open_image(store)
    with pytest.raises(ChunkError) as info:
        img.values  # noqa: B018
    assert "(1, 0, 1)" in str(info.value)
    assert "img.ome.zarr/0" in str(info.value)
    with pytest.raises(ChunkError, match=re.escape("(1, 0, 1)")):
        img.compute()


def test_refuses_to_overwrite_and_keeps_old_data(store):
    before = vz.open_image(store).values.copy()
    other = vz.from_array(np.zeros((2, 2), "uint8"), "yx", voxel_size=1)
    with pytest.raises(OverwriteError):
        other.vox.to_ome_zarr(store)
    np.testing.assert_array_equal(vz.open_image(store).values, before)
    other.vox.to_ome_zarr(store, overwrite=True)
    assert vz.open_image(store).shape == (2, 2)
    assert not [p for p in store.parent.iterdir() if p.name.startswith(".")]


def test_failed_write_leaves_nothing(tmp_path):
    import dask.array as da

    def boom(block):
        raise RuntimeError("disk on fire")

    data = da.zeros((4, 8, 8), chunks=(2, 8, 8), dtype="uint8").map_blocks(boom, dtype="uint8")
    img = vz.from_array(data, "zyx", voxel_size=1)
    with pytest.raises(RuntimeError):
        img.vox.to_ome_zarr(tmp_path / "x.ome.zarr")
    assert list(tmp_path.iterdir()) == []


def test_killed_write_never_reads_as_complete(tmp_path):
    """Kill the writing process mid-way: no dataset appears at the target path."""
    target = tmp_path / "big.ome.zarr"
    code = (
        "import time, numpy as np, dask.array as da, voxzarr as vz\n"
        "def slow(b):\n    time.sleep(0.05); return b\n"
        "d = da.ones((64, 256, 256), chunks=(1, 256, 256), dtype='uint16').map_blocks(slow)\n"
        f"vz.from_array(d, 'zyx', voxel_size=1).vox.to_ome_zarr({str(target)!r}, "
        "chunks=(1, 256, 256))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(200):  # wait until the hidden partial store appears
            if any(p.name.startswith(".partial-") for p in tmp_path.iterdir()):
                break
            if proc.poll() is not None:
                break
            import time

            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not target.exists()
    with pytest.raises(StoreError):
        vz.open_image(target)
    for p in tmp_path.iterdir():
        shutil.rmtree(p)


def test_non_uniform_coordinates_refused_on_write(tmp_path):
    import xarray as xr

    img = xr.DataArray(np.zeros((3, 3)), dims=("y", "x"),
                       coords={"y": [0.0, 1.0, 5.0], "x": [0.0, 1.0, 2.0]})
    with pytest.raises(GeometryError, match="uniformly"):
        vz.to_ome_zarr(img, tmp_path / "n.ome.zarr")
    assert not (tmp_path / "n.ome.zarr").exists()


def test_missing_voxel_size_refused_on_write(tmp_path):
    import xarray as xr

    img = xr.DataArray(np.zeros((3, 3)), dims=("y", "x"))
    with pytest.raises(GeometryError, match="no coordinate"):
        vz.to_ome_zarr(img, tmp_path / "n.ome.zarr")


def test_shards_need_v05(tmp_path):
    img = vz.from_array(np.zeros((4, 4)), "yx", voxel_size=1)
    with pytest.raises(VoxzarrError, match="sharding"):
        img.vox.to_ome_zarr(tmp_path / "s.ome.zarr", version="0.4", shards=(4, 4))


def test_wrong_series_and_well(tmp_path, data_dir):
    bf = data_dir / "ome-zarr" / "v0.4-bioformats2raw" / "fake-series-2.zarr"
    with pytest.raises(StoreError) as info:
        vz.open_image(bf, series=7)
    assert info.value.field == "series"
    plate = data_dir / "ome-zarr" / "v0.4-bioformats2raw" / "plate-rows-2.zarr"
    with pytest.raises(MetadataError, match="no well") as info:
        vz.open_image(plate, well="Z/9")
    assert info.value.field == "plate.wells"


@pytest.mark.parametrize(("voxel_size", "message"), [
    ((1.0, 2.0), "voxel_size has 2 values for the 3 spatial axes 'zyx'"),
    (("a", 1, 1), "must be numbers"),
    ([None], "1 values for the 3"),
])
def test_from_array_bad_voxel_size(voxel_size, message):
    with pytest.raises(ArgumentError, match=re.escape(message)) as info:
        vz.from_array(np.zeros((2, 3, 4)), "zyx", voxel_size=voxel_size)
    assert info.value.field == "voxel_size"


def test_from_array_voxel_size_in_axis_order():
    img = vz.from_array(np.zeros((3, 2, 3, 4)), "tzyx", voxel_size=[2.0, 0.5, 0.25],
                        translation=(10.0, 1.0, -1.0))
    assert img.vox.voxel_size == {"z": 2.0, "y": 0.5, "x": 0.25}
    assert (img.z.values[0], img.y.values[0], img.x.values[0]) == (10.0, 1.0, -1.0)
    same = vz.from_array(np.zeros((3, 2, 3, 4)), "tzyx",
                         voxel_size={"z": 2.0, "y": 0.5, "x": 0.25},
                         translation={"z": 10.0, "y": 1.0, "x": -1.0})
    xr.testing.assert_identical(img, same)


@pytest.mark.parametrize(("kwargs", "cls", "field", "message"), [
    ({"voxel_size": {"q": 1.0}}, GeometryError, "voxel_size", "['q'], which are not"),
    ({"voxel_size": {"c": 1.0}}, GeometryError, "voxel_size", "['c'], which are not"),
    ({"voxel_size": {"z": "thin"}}, ArgumentError, "voxel_size", "must be numbers"),
    ({"translation": {"q": 1.0}}, GeometryError, "translation", "['q'], which are not"),
    ({"translation": (1.0, 2.0)}, ArgumentError, "translation", "2 values for the 3"),
    ({"translation": 5.0}, ArgumentError, "translation", "must be a mapping"),
    ({"units": {"q": "um"}}, GeometryError, "units", "['q'], which are not"),
])
def test_from_array_names_the_bad_keyword(kwargs, cls, field, message):
    with pytest.raises(cls, match=re.escape(message)) as info:
        vz.from_array(np.zeros((2, 2, 3, 4)), "czyx", **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(("pyramid", "message"), [
    ({"levelz": 3}, "unknown pyramid option(s) ['levelz']; known: ['levels', 'method'"),
    ("yes", "pyramid must be True, False or a dict"),
    (None, "pyramid must be True, False or a dict"),
])
def test_bad_pyramid_argument_is_named_and_writes_nothing(tmp_path, pyramid, message):
    img = vz.from_array(np.zeros((4, 16, 16), "uint8"), "zyx", voxel_size=1)
    target = tmp_path / "p.ome.zarr"
    with pytest.raises(ArgumentError, match=re.escape(message)) as info:
        img.vox.to_ome_zarr(target, pyramid=pyramid, progress=False)
    assert info.value.field == "pyramid"
    assert list(tmp_path.iterdir()) == []
