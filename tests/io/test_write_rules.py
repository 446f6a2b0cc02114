"""The rules every writer shares, each kept in one place: codecs, the shard format, the
group a version is written into, replacing a finished store, the local scheduler."""

from __future__ import annotations

import dask.threaded
import numcodecs
import numpy as np
import pytest
import zarr
import zarr.storage
from zarr.codecs import BloscCodec

import voxzarr as vz
from voxzarr import _store, _write
from voxzarr._chunkwrite import (
    SHARD_EMPTY,
    read_shard_index,
    shard_index_nbytes,
    shard_parts,
)
from voxzarr.errors import ArgumentError, OverwriteError
from voxzarr.series import to_series


def _img(t: bool = False):
    dims = "tyx" if t else "zyx"
    return vz.from_array(np.arange(2 * 8 * 8, dtype=np.uint16).reshape(2, 8, 8), dims=dims,
                         voxel_size=0.5)


def test_codecs_per_zarr_format():
    assert _write.codecs("0.4", "lz4", 5) == numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE)
    assert _write.codecs("0.5", "lz4", 5) == BloscCodec(cname="lz4", clevel=5,
                                                        shuffle="shuffle")
    assert _write.codecs("0.5", None, 3) is None


@pytest.mark.parametrize("kw", [{"compressor": "bogus"}, {"clevel": 10}, {"clevel": -1},
                                {"clevel": 2.5}, {"compressor": 3}])
def test_bad_codec_is_refused_before_writing(tmp_path, kw):
    with pytest.raises(ArgumentError) as err:
        vz.to_ome_zarr(_img(), tmp_path / "a.zarr", **kw)
    assert err.value.field in ("compressor", "clevel")
    with pytest.raises(ArgumentError):
        to_series(_img(t=True), tmp_path / "s.zarr", **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_shard_parts_round_trip():
    per = (2, 3)
    parts = shard_parts([((0, 1), b"abc"), ((1, 0), None), ((1, 2), b"de")], per)
    assert parts is not None
    raw = b"".join(parts)
    index = read_shard_index(raw[-shard_index_nbytes(per):], per)
    assert index[0, 1].tolist() == [0, 3] and index[1, 2].tolist() == [3, 2]
    assert index[1, 0].tolist() == [SHARD_EMPTY, SHARD_EMPTY]
    assert shard_parts([((0, 0), None)], per) is None
    bad = bytearray(raw[-shard_index_nbytes(per):])
    bad[0] ^= 1
    with pytest.raises(ValueError, match="CRC32C"):
        read_shard_index(bytes(bad), per)


def test_open_write_group_format(tmp_path):
    g4 = _write.open_write_group(tmp_path / "a", version="0.4")
    g5 = _write.open_write_group(tmp_path / "b")
    assert (g4.metadata.zarr_format, g5.metadata.zarr_format) == (2, 3)
    sub = _write.open_write_group(g5.store, mode="a", path="labels")
    assert sub.path == "labels" and sub.store_path.path == "labels"


def test_move_into_place_replaces(tmp_path):
    old, new = tmp_path / "x", tmp_path / ".new"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    (new / "b").write_text("new")
    _store.move_into_place(new, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
    assert [p.name for p in old.iterdir()] == ["b"]


def test_check_free(tmp_path):
    _store.check_free(tmp_path / "nothing", overwrite=False)
    with pytest.raises(OverwriteError):
        _store.check_free(tmp_path, overwrite=False)
    _store.check_free(tmp_path, overwrite=True)


def test_write_scheduler_any_local_store(tmp_path):
    mem = zarr.storage.MemoryStore()
    wrapped = zarr.storage.LoggingStore(mem)
    assert _store.process_local(wrapped)
    assert _write.write_scheduler(zarr.storage.LocalStore(tmp_path), wrapped) == {
        "scheduler": dask.threaded.get}
