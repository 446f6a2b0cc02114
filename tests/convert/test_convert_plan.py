"""How convert reads and plans: lazily, page by page, in tasks of whole shards within budget."""

from __future__ import annotations

import importlib
import math
import pickle

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.convert import read_source
from voxzarr.convert.tiff import TiffPages
from voxzarr.convert.write import task_chunks, write_unit
from voxzarr.errors import ConversionError


@pytest.fixture
def stack(tmp_path):
    data = np.arange(6 * 3 * 8 * 9, dtype="uint16").reshape(6, 3, 8, 9)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZYX", "unit": "um"})
    return path, data


def test_source_is_lazy_and_reads_only_touched_pages(stack, monkeypatch):
    path, data = stack
    seen: list = []
    real = tifffile.TiffFile.asarray

    def spy(self, key=None, **kw):
        seen.append(key)
        return real(self, key=key, **kw)

    monkeypatch.setattr(tifffile.TiffFile, "asarray", spy)
    src = read_source(path)
    assert seen == []  # describing the file reads no pixels
    assert src.axes == "tzyx" and src.data.chunksize == (1, 1, 8, 9)
    np.testing.assert_array_equal(src.data[4, 1].compute(), data[4, 1])
    assert seen == [[13]]  # page index t * 3 + z, nothing else


def test_tiff_reader_pickles(stack):
    path, data = stack
    src = read_source(path)
    reader = src.data.dask[next(iter(src.data.dask))]  # the TiffPages object in the graph
    if not isinstance(reader, TiffPages):
        reader = TiffPages(str(path), 0, data.shape, data.dtype, 2)
    clone = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(clone[(slice(2, 4), slice(0, 3), slice(None), slice(None))],
                                  data[2:4])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 300), st.integers(1, 64), st.integers(1, 4)),
             min_size=2, max_size=4),
    st.sampled_from([1, 2, 4]),
    st.integers(1 << 10, 1 << 22),
)
def test_task_chunks_are_whole_units_within_budget(axes, itemsize, budget):
    # input axis of n voxels read in pieces of c (or whole when the piece count is 1)
    src = tuple((c,) * k for c, _, k in axes)
    unit = tuple(min(u, c * k) for (c, u, k) in axes)
    shape = tuple(c * k for c, _, k in axes)
    out = task_chunks(src, unit, itemsize, budget)
    for o, u, n in zip(out, unit, shape, strict=True):
        assert (o % u == 0 and o >= u) or o == n  # whole units, or the whole axis
    if math.prod(out) * itemsize > budget:
        assert out == unit  # only a single unit may exceed the budget
    natural = tuple(n if k == 1 else max(u, c // u * u)
                    for (c, _, k), u, n in zip(axes, unit, shape, strict=True))
    if math.prod(natural) * itemsize <= budget:
        assert out == natural  # within budget: pages / frames are read exactly once


def test_write_unit_matches_io():
    assert write_unit(("z", "y", "x"), (300, 100, 700), None, None) == ((128, 100, 128), None)
    ck, sh = write_unit(("t", "y", "x"), (5, 64, 64), (1, 16, 16), (2, 40, 40))
    assert ck == (1, 16, 16) and sh == (2, 32, 32)


def test_voxel_size_for_missing_axis(stack, tmp_path):
    path, _ = stack
    with pytest.raises(ConversionError) as err:
        vz.convert(path, tmp_path / "o.zarr", voxel_size={"c": 2.0})
    assert err.value.field == "voxel_size"
    with pytest.raises(ConversionError):
        vz.convert(path, tmp_path / "o.zarr", voxel_size={"z": 0.0})


_index = st.one_of(
    st.integers(-3, 2),
    st.builds(slice, st.one_of(st.none(), st.integers(-4, 4)),
              st.one_of(st.none(), st.integers(-4, 6)),
              st.one_of(st.none(), st.integers(1, 3), st.integers(-2, -1))),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_index, min_size=1, max_size=3), st.booleans())
def test_split_key_matches_numpy(key, ellipsis):
    from voxzarr.convert.source import split_key

    arr = np.arange(3 * 4 * 5).reshape(3, 4, 5)
    k = (Ellipsis, *key) if ellipsis else tuple(key)
    box, rest = split_key(k, arr.shape)
    assert all(isinstance(b, slice) and b.step is None for b in box)
    np.testing.assert_array_equal(arr[box][rest], arr[k])


def test_readers_take_any_dask_index(stack, tmp_path):
    path, data = stack
    src = read_source(path)
    for key in [(slice(None, None, 2), 1), (-1, slice(None), slice(1, 7, 3)),
                (np.array([0, 5]), 2)]:
        np.testing.assert_array_equal(src.data[key].compute(), data[key])


def test_write_tasks_read_their_own_block(stack, tmp_path, monkeypatch):
    """Convert reads each write task's block straight from the file: no rechunk layer that
    would hold many page chunks at once, and every block is whole stored shards."""
    path, data = stack
    w = importlib.import_module("voxzarr.convert.write")
    seen = {}
    real = w.to_ome_zarr

    def spy(img, location, **kw):
        seen["img"], seen["kw"] = img, kw
        return real(img, location, **kw)

    monkeypatch.setattr(w, "to_ome_zarr", spy)
    vz.convert(path, tmp_path / "o.zarr", chunks=(1, 1, 4, 4), shards=(1, 2, 8, 8))
    img = seen["img"]
    assert not any("rechunk" in str(k) for k in img.data.dask.layers)
    assert img.data.chunksize == (1, 2, 8, 9)  # z: one shard; y/x: whole pages
    assert seen["kw"]["shards"] == (1, 2, 8, 8)
