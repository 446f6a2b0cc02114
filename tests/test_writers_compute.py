"""Writers take ``compute=False`` and return a Delayed, as xarray's ``to_zarr`` does.

For each writer: the call returns a :class:`dask.delayed.Delayed`; before it is computed the
location does not read as a complete dataset; once computed, the store holds exactly the
bytes a ``compute=True`` write gives, and the Delayed computes to what that write returns.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from dask.delayed import Delayed

import voxzarr as vz
from voxzarr import _store
from voxzarr.errors import InvalidArgumentError, StaleHaloError, VoxzarrError
from voxzarr.halo import bump_generation, write_halo
from voxzarr.io import write_multiscale
from voxzarr.series import open_series, to_images, to_series


def _image(shape=(20, 24, 28), chunks=(10, 12, 14), dtype="uint16", dims="zyx"):
    arr = (np.arange(np.prod(shape)) % 997).astype(dtype).reshape(shape)
    return vz.from_array(da.from_array(arr, chunks=chunks), dims=dims,
                         voxel_size={d: 0.5 + i for i, d in enumerate(dims)})


def _movie():
    arr = (np.arange(6 * 16 * 18) % 251).astype("uint16").reshape(6, 16, 18)
    return vz.from_array(da.from_array(arr, chunks=(1, 16, 18)), dims="tyx",
                         voxel_size={"t": 2.0, "y": 0.5, "x": 0.5})


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a store directory by relative path (metadata and chunks alike)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _no_partials(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- to_ome_zarr
@pytest.mark.parametrize("kwargs", [
    {},
    {"pyramid": True, "chunks": 8},
    {"version": "0.4"},
    {"shards": 16, "chunks": 8, "labels": "yes"},
])
def test_to_ome_zarr_deferred_equals_direct(tmp_path, kwargs):
    img = _image()
    if kwargs.get("labels"):
        lab = vz.from_array((img.data // 200).astype("uint8"), dims="zyx",
                            voxel_size=img.vox.voxel_size)
        kwargs = {**kwargs, "labels": {"cells": lab}}
    direct = tmp_path / "direct.ome.zarr"
    deferred = tmp_path / "deferred.ome.zarr"
    assert vz.to_ome_zarr(img, direct, **kwargs) == direct
    d = img.vox.to_ome_zarr(deferred, compute=False, **kwargs)
    assert isinstance(d, Delayed)
    assert not deferred.exists()  # the arrays wait in a hidden sibling
    with pytest.raises(VoxzarrError):
        vz.open_image(deferred)
    assert d.compute() == deferred
    assert _files(deferred) == _files(direct)
    assert _no_partials(tmp_path) == []
    np.testing.assert_array_equal(vz.open_image(deferred).values, img.values)


def test_to_ome_zarr_deferred_tree_and_zip(tmp_path):
    tree = _image().vox.pyramid(levels=2)
    direct, deferred = tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr"
    tree.vox.to_ome_zarr(direct)
    tree.vox.to_ome_zarr(deferred, compute=False).compute()
    assert _files(deferred) == _files(direct)
    z = tmp_path / "c.ome.zarr.zip"
    d = tree.vox.to_ome_zarr(z, compute=False)
    assert not z.exists()
    d.compute()
    np.testing.assert_array_equal(vz.open_image(z, level=1).values,
                                  vz.open_image(direct, level=1).values)


def test_to_ome_zarr_deferred_in_place_store_has_no_image_until_computed():
    img = _image()
    url = f"memory://deferred-{uuid.uuid4().hex}.ome.zarr"
    d = vz.to_ome_zarr(img, url, compute=False)
    with pytest.raises(VoxzarrError):  # written in place, but no multiscales yet
        vz.open_image(url)
    assert d.compute(scheduler="threads") == url
    np.testing.assert_array_equal(vz.open_image(url).values, img.values)


def test_to_ome_zarr_deferred_checks_at_call_time(tmp_path):
    img = _image()
    out = tmp_path / "x.ome.zarr"
    vz.to_ome_zarr(img, out)
    with pytest.raises(vz.OverwriteError):
        vz.to_ome_zarr(img, out, compute=False)
    d = vz.to_ome_zarr(img * 2, out, overwrite=True, compute=False)
    np.testing.assert_array_equal(vz.open_image(out).values, img.values)  # old one kept
    d.compute()
    np.testing.assert_array_equal(vz.open_image(out).values, img.values * 2)


def test_two_deferred_writes_in_one_compute(tmp_path):
    a, b = _image(), _image() + 1
    da_, db = tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr"
    out = dask.compute(vz.to_ome_zarr(a, da_, compute=False),
                       vz.to_ome_zarr(b, db, compute=False, pyramid=True))
    assert out == (da_, db)
    np.testing.assert_array_equal(vz.open_image(da_).values, a.values)
    np.testing.assert_array_equal(vz.open_image(db).values, b.values)


def test_deferred_write_shows_no_progress_at_call_time(tmp_path, capsys):
    d = vz.to_ome_zarr(_image(), tmp_path / "p.ome.zarr", compute=False, progress=True)
    assert capsys.readouterr().err == ""
    d.compute()


def test_write_multiscale_refuses_to_defer_a_stream_that_reads_back(tmp_path):
    img = _image()

    def stream():
        yield "0", img

    with pytest.raises(InvalidArgumentError) as err:
        write_multiscale(tmp_path / "s.zarr", stream(), compute=False)
    assert err.value.field == "compute"
    ms = write_multiscale(tmp_path / "t.zarr", [("0", img)], compute=False).compute()
    assert ms.levels[0].path == "0"
    np.testing.assert_array_equal(vz.open_image(tmp_path / "t.zarr").values, img.values)


# --------------------------------------------------------------------------- write_halo
def test_write_halo_deferred_equals_direct(tmp_path):
    img = _image()
    direct, deferred = tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr"
    for p in (direct, deferred):
        vz.to_ome_zarr(img, p, pyramid={"levels": 2})
    assert write_halo(img, direct, depth=3) == direct
    d = img.vox.to_halo(deferred, depth=3, compute=False)
    assert isinstance(d, Delayed)
    with pytest.raises(VoxzarrError):  # the halo array exists but is not stamped
        vz.open_halo(deferred)
    assert d.compute() == deferred
    assert _files(deferred) == _files(direct)
    h = vz.open_halo(deferred)
    np.testing.assert_array_equal(np.asarray(h.core), img.values)


def test_write_halo_deferred_two_at_once_and_stale(tmp_path):
    img = _image()
    a, b = tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr"
    for p in (a, b):
        vz.to_ome_zarr(img, p)
    dask.compute(write_halo(None, a, depth=2, compute=False),
                 write_halo(None, b, depth=(1, 2, 3), compute=False))
    assert vz.open_halo(a) is not None and vz.open_halo(b) is not None
    d = write_halo(None, a, depth=4, compute=False)
    bump_generation(a)  # the image changed before the halo was stamped
    with pytest.raises(StaleHaloError):
        d.compute()
    with pytest.raises(VoxzarrError):  # left unstamped: refused, never used as fresh
        vz.open_halo(a)


def test_write_halo_cannot_defer_writing_the_image_first(tmp_path):
    with pytest.raises(InvalidArgumentError) as err:
        write_halo(_image(), tmp_path / "new.ome.zarr", depth=2, compute=False)
    assert err.value.field == "compute"
    assert not (tmp_path / "new.ome.zarr").exists()


# --------------------------------------------------------------------------- series
@pytest.mark.parametrize("staging", [False, True])
def test_to_series_and_back_deferred_equal_direct(tmp_path, staging):
    img = _movie()
    direct, deferred = tmp_path / "a.series.zarr", tmp_path / "b.series.zarr"
    assert to_series(img, direct, memory="1MB", staging=staging, threads=2) == direct
    d = img.vox.to_series(deferred, memory="1MB", staging=staging, threads=2, compute=False)
    assert isinstance(d, Delayed)
    assert not deferred.exists()
    with pytest.raises(VoxzarrError):
        open_series(deferred)
    assert d.compute() == deferred
    assert _files(deferred) == _files(direct)
    ser = open_series(deferred)
    np.testing.assert_array_equal(ser.values, img.values)

    back_direct, back_deferred = tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr"
    to_images(ser, back_direct, memory="1MB", staging=staging, threads=2)
    d2 = ser.vox.to_images(back_deferred, memory="1MB", staging=staging, threads=2,
                           compute=False)
    with pytest.raises(VoxzarrError):
        vz.open_image(back_deferred)
    assert d2.compute() == back_deferred
    assert _files(back_deferred) == _files(back_direct)
    assert _no_partials(tmp_path) == []


def test_to_series_deferred_in_memory_store_and_two_at_once(tmp_path):
    img = _movie()
    url = f"memory://series-{uuid.uuid4().hex}.zarr"
    d1 = to_series(img, url, memory="1MB", compute=False)
    d2 = to_series(img.compute(), tmp_path / "n.series.zarr", memory="1MB", compute=False)
    with pytest.raises(VoxzarrError):
        open_series(url)
    assert dask.compute(d1, d2, scheduler="threads") == (url, tmp_path / "n.series.zarr")
    np.testing.assert_array_equal(open_series(url).values, img.values)
    np.testing.assert_array_equal(open_series(tmp_path / "n.series.zarr").values, img.values)


# --------------------------------------------------------------------------- StoreRef
def test_store_ref_resolves_once(tmp_path):
    ref = _store.resolve(tmp_path / "r.ome.zarr", writable=True)
    assert not ref.read_only and ref.local == tmp_path / "r.ome.zarr"
    assert _store.resolve(ref, writable=True) is ref
    assert not ref.exists()
    vz.to_ome_zarr(_image(), ref)
    assert ref.exists() and _store.local_path(ref) == ref.local
    group = zarr.open_group(ref.local, mode="r")
    sub = _store.resolve(group)
    assert sub.path == group.path and sub.read_only
