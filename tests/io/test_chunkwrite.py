"""The direct chunk writer stores exactly what zarr reads back, for every layout it accepts."""

from __future__ import annotations

import dask.array as da
import numcodecs
import numpy as np
import pytest
import zarr
import zarr.storage
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.codecs import BloscCodec, GzipCodec

from voxzarr import _chunkread
from voxzarr._chunkread import read_region
from voxzarr._chunkwrite import _FastTarget, chunk_target


@st.composite
def cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 20)) for _ in range(ndim))
    chunks = tuple(draw(st.integers(1, n)) for n in shape)
    layout = draw(st.sampled_from(["v3", "v3-sharded", "v2"]))
    shards = None
    if layout == "v3-sharded":
        shards = tuple(c * draw(st.integers(1, 3)) for c in chunks)
    dtype = draw(st.sampled_from(["uint8", "uint16", "int32", "float32", "float64"]))
    zero_frac = draw(st.sampled_from([0.0, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**31))
    return shape, chunks, shards, layout, dtype, zero_frac, seed


def _create(path, shape, chunks, shards, layout, dtype):
    if layout == "v2":
        return zarr.create_array(path, shape=shape, dtype=dtype, chunks=chunks, zarr_format=2,
                                 compressors=numcodecs.Blosc(cname="zstd", clevel=3, shuffle=1),
                                 chunk_key_encoding={"name": "v2", "separator": "/"})
    return zarr.create_array(path, shape=shape, dtype=dtype, chunks=chunks, shards=shards,
                             compressors=BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))


@settings(max_examples=60, deadline=None)
@given(case=cases(), mult=st.integers(1, 3))
def test_fast_writes_read_back_identically(tmp_path_factory, case, mult):
    shape, chunks, shards, layout, dtype, zero_frac, seed = case
    rng = np.random.default_rng(seed)
    data = (rng.random(shape) * 100).astype(dtype)
    data[rng.random(shape) < zero_frac] = 0
    arr = _create(tmp_path_factory.mktemp("cw") / "a", shape, chunks, shards, layout, dtype)
    target = chunk_target(arr)
    assert isinstance(target, _FastTarget)
    unit = shards or chunks
    da.store(da.from_array(data, chunks=tuple(u * mult for u in unit)), target, lock=False)
    np.testing.assert_array_equal(zarr.open_array(arr.store, path=arr.path, mode="r")[:], data)


def test_unaligned_regions_fall_back_to_zarr(tmp_path):
    arr = _create(tmp_path / "a", (10, 10), (4, 4), None, "v3", "uint16")
    target = chunk_target(arr)
    data = np.arange(100, dtype="uint16").reshape(10, 10)
    da.store(da.from_array(data, chunks=(3, 7)), target, lock=True)  # 3 is not a chunk multiple
    np.testing.assert_array_equal(arr[:], data)


def test_other_codecs_use_zarr(tmp_path):
    arr = zarr.create_array(tmp_path / "g", shape=(4,), dtype="uint8", chunks=(2,),
                            compressors=GzipCodec())
    assert chunk_target(arr) is arr


@settings(max_examples=80, deadline=None)
@given(case=cases(), data=st.data(), memory=st.booleans())
def test_fast_reads_equal_zarr(tmp_path_factory, case, data, memory):
    """Any box, aligned or not, from a local directory or a (remote-like) memory store."""
    shape, chunks, shards, layout, dtype, zero_frac, seed = case
    rng = np.random.default_rng(seed)
    values = (rng.random(shape) * 100).astype(dtype)
    values[rng.random(shape) < zero_frac] = 0
    where = zarr.storage.MemoryStore() if memory else tmp_path_factory.mktemp("cr") / "a"
    arr = _create(where, shape, chunks, shards, layout, dtype)
    arr[:] = values
    key = []
    for n, c in zip(shape, chunks, strict=True):
        if data.draw(st.booleans()):  # whole chunks
            a = data.draw(st.integers(0, (n - 1) // c)) * c
            b = min(n, a + c * data.draw(st.integers(1, 3)))
        else:  # any box, partial chunks included
            a = data.draw(st.integers(0, n - 1))
            b = data.draw(st.integers(a + 1, n))
        key.append(slice(a, b))
    got = read_region(arr, tuple(key))
    assert got.dtype == values.dtype and got.flags.writeable
    np.testing.assert_array_equal(got, values[tuple(key)])


@pytest.mark.parametrize("layout", ["v3", "v3-sharded", "v2"])
@pytest.mark.parametrize("memory", [False, True])
def test_large_reads_decode_on_the_pool_and_skip_missing_chunks(tmp_path, layout, memory):
    """Regions above the serial threshold decode on the shared pool; chunks (and inner
    chunks of shards) that were never written read as the fill value."""
    shape, chunks = (24, 160, 150), (8, 64, 64)
    shards = (8, 128, 128) if layout == "v3-sharded" else None
    rng = np.random.default_rng(1)
    values = rng.integers(1, 60000, size=shape, dtype="uint16")
    values[8:16] = 0  # a slab of empty chunks: not stored
    values[:, :64, :64] = 0
    arr = _create(zarr.storage.MemoryStore() if memory else tmp_path / "a", shape, chunks,
                  shards, layout, "uint16")
    arr[:] = values
    assert values.nbytes > _chunkread._SERIAL_BYTES
    np.testing.assert_array_equal(read_region(arr, (slice(None),) * 3), values)
    box = (slice(3, 21), slice(10, 150), slice(0, 129))
    np.testing.assert_array_equal(read_region(arr, box), values[box])


def test_corrupt_shard_index_is_an_error(tmp_path):
    arr = _create(tmp_path / "a", (8, 8), (4, 4), (8, 8), "v3-sharded", "uint16")
    arr[:] = np.arange(64, dtype="uint16").reshape(8, 8)
    shard = tmp_path / "a" / "c" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="CRC32C"):
        read_region(arr, (slice(None), slice(None)))


def test_put_object_is_atomic_on_a_local_store(tmp_path):
    """A unit is written aside and renamed into place: a failed write leaves the previous
    object untouched and no partial file behind."""
    from voxzarr._chunkwrite import delete_object, get_object, put_object
    from voxzarr._store import local_root

    store = zarr.storage.LocalStore(tmp_path)
    root = local_root(store)
    assert root == tmp_path
    put_object(store, root, "a/c/0/0", [b"abc", b"def"])
    assert (tmp_path / "a/c/0/0").read_bytes() == b"abcdef"
    with pytest.raises(TypeError):
        put_object(store, root, "a/c/0/0", [b"new", 12345])  # fails half-way through
    assert get_object(store, root, "a/c/0/0") == b"abcdef"
    assert sorted(p.name for p in (tmp_path / "a/c/0").iterdir()) == ["0"]
    delete_object(store, root, "a/c/0/0")
    delete_object(store, root, "a/c/0/0")  # absent: nothing to do
    assert get_object(store, root, "a/c/0/0") is None
    # any other store goes through zarr
    mem = zarr.storage.MemoryStore()
    assert local_root(mem) is None
    put_object(mem, None, "k", [b"x", b"y"])
    assert bytes(get_object(mem, None, "k")) == b"xy"
    delete_object(mem, None, "k")
    assert get_object(mem, None, "k") is None
