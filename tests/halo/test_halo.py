"""Overlap-halo storage: layout, one read per chunk, exactness from the store, staleness."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import xarray as xr
import zarr
import zarr.storage
from _filter_reference import assert_matches, chain_reference, filter_specs, make_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.errors import HaloError, StaleHaloError, VoxzarrError
from voxzarr.filters import filter_radius
from voxzarr.halo import (
    AxisLayout,
    HaloLayout,
    bump_generation,
    find_halo_depth,
    halo_status,
    image_generation,
    open_halo,
    storage_overhead,
    write_halo,
    write_region,
)
from voxzarr.halo.depth import tiled_apply


class CountingStore(zarr.storage.WrapperStore):
    """Records every key read (``get`` and partial reads) in a shared list."""

    def __init__(self, store, log=None):
        super().__init__(store)
        self.log = [] if log is None else log

    def _with_store(self, store):
        return type(self)(store, self.log)

    async def get(self, key, prototype, byte_range=None):
        self.log.append(key)
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        self.log.extend(k for k, _ in key_ranges)
        return await self._store.get_partial_values(prototype, key_ranges)


def write_image(arr, dims, chunks, store=None, **kw):
    store = zarr.storage.MemoryStore() if store is None else store
    vz.from_array(arr, dims).vox.to_ome_zarr(store, chunks=chunks, progress=False, **kw)
    return store


# --------------------------------------------------------------------------- layout
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 20), st.integers(0, 25), st.booleans())
def test_axis_layout_blocks_cover_core_and_span(n, c, h, periodic):
    ax = AxisLayout.regular(n, c, h, periodic)
    assert ax.n_blocks == -(-n // c)
    covered = []
    for k in range(ax.n_blocks):
        a, b = ax.core(k)
        covered.extend(range(a, b))
        lo, hi = ax.span(k)
        assert (lo, hi) == (k * c - h, min((k + 1) * c, n) + h)
        vlo, vhi = ax.valid(k)
        before, after = ax.outside(k)
        assert vlo - before == lo and vhi + after == hi
        if not periodic:
            assert (vlo, vhi) == (max(lo, 0), min(hi, n))
        positions = np.concatenate([np.arange(s, e) for s, e, _ in ax.runs(k)])
        assert np.array_equal(positions, np.arange(vlo, vhi) % n)
        core = ax.core_in_valid(k)
        assert np.array_equal(positions[core], np.arange(a, b))
        assert vhi - lo <= c + 2 * h  # the valid part fits in one stored chunk
    assert covered == list(range(n))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 12), min_size=2, max_size=3).flatmap(
    lambda shape: st.tuples(st.just(shape),
                            st.lists(st.integers(2, 8), min_size=len(shape),
                                     max_size=len(shape)),
                            st.lists(st.integers(0, 7), min_size=len(shape),
                                     max_size=len(shape)))))
def test_add_then_trim_halo_is_identity(case):
    """Blocks from the store cut back to their cores give the image (HaloArray.core)."""
    shape, chunks, depth = case
    arr = make_image(shape, "uint16", seed=sum(shape))
    dims = ("z", "y", "x")[-len(shape):]
    store = write_image(arr, dims, chunks)
    write_halo(None, store, depth=depth, progress=False)
    h = open_halo(store)
    chunks = [min(c, n) for c, n in zip(chunks, shape, strict=True)]  # as stored
    assert h.array.shape == tuple(-(-n // c) * (c + 2 * d)
                                  for n, c, d in zip(shape, chunks, depth, strict=True))
    assert h.array.chunks == tuple(c + 2 * d for c, d in zip(chunks, depth, strict=True))
    np.testing.assert_array_equal(h.core.values, arr)
    for index in itertools.product(*(range(n) for n in h.numblocks)):
        b = h.block(index)
        want = arr[tuple(slice(max(lo, 0), hi) for lo, hi in b.span)]
        np.testing.assert_array_equal(b.data, want)


def test_stored_chunk_k_holds_the_documented_region():
    """Stored chunk k holds image [k*c - h, (k+1)*c + h), zero outside the image."""
    arr = np.arange(1, 23, dtype=np.uint16)[None, :].repeat(3, 0)  # (3, 22), values 1..22
    store = write_image(arr, "yx", (3, 8))
    write_halo(None, store, depth={"x": 3}, progress=False)
    raw = zarr.open_array(store, path="halo/0", mode="r")[:]
    assert raw.shape == (3, 3 * 14)
    row = raw[0]
    np.testing.assert_array_equal(row[0:14], [0, 0, 0, *range(1, 12)])
    np.testing.assert_array_equal(row[14:28], range(6, 20))
    np.testing.assert_array_equal(row[28:42], [*range(14, 23), 0, 0, 0, 0, 0])
    meta = zarr.open_array(store, path="halo/0", mode="r").attrs["voxzarr"]
    assert meta["layout"] == "halo" and meta["version"] == "1.0"
    assert meta["depth"] == [0, 3] and meta["core_chunks"] == [3, 8]
    assert meta["shape"] == [3, 22] and meta["border"] == "valid"
    assert meta["source_level"] == "0" and meta["generation"] == 0


def test_periodic_halo_holds_the_opposite_face():
    arr = np.arange(1, 11, dtype=np.float32)[None, :].repeat(2, 0)
    store = write_image(arr, "yx", (2, 4))
    write_halo(None, store, depth={"x": 2}, periodic="x", progress=False)
    h = open_halo(store)
    np.testing.assert_array_equal(h.block((0, 0)).data[0], [9, 10, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(h.block((0, 2)).data[0], [7, 8, 9, 10, 1, 2])
    assert h.block((0, 2)).outside == ((0, 0), (0, 0))


def test_storage_overhead():
    assert storage_overhead((128,) * 3, (20,) * 3) == pytest.approx((168 / 128) ** 3 - 1)
    assert storage_overhead((64, 64), (0, 0)) == 0.0


# --------------------------------------------------------------------------- exact from store
@st.composite
def store_cases(draw):
    ndim = draw(st.sampled_from([2, 3]))
    hi = 20 if ndim == 3 else 36
    shape = tuple(draw(st.lists(st.integers(3, hi), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(st.integers(max(1, n // 4), n)) for n in shape)
    dtype = draw(st.sampled_from(("uint8", "uint16", "float32", "float64")))
    mode = draw(st.sampled_from(("reflect", "nearest", "mirror", "constant", "wrap")))
    steps = [draw(filter_specs(ndim))]
    if draw(st.integers(0, 3)) == 0:
        steps.append(draw(filter_specs(ndim)))
    extra = draw(st.integers(0, 3))
    return shape, chunks, dtype, mode, steps, extra


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(store_cases(), st.integers(0, 2**16))
def test_filter_from_halo_store_matches_scipy(case, seed):
    shape, chunks, dtype, mode, steps, extra = case
    arr = make_image(shape, dtype, seed)
    dims = ("z", "y", "x")[-len(shape):]
    store = write_image(arr, dims, chunks)
    radius = filter_radius(steps, dims)
    write_halo(None, store, depth=[r + extra for r in radius], periodic=mode == "wrap",
               progress=False)
    img = vz.open_image(store)
    out = img.vox.filter(steps, mode=mode, halo="require")
    assert out.data.npartitions == int(np.prod([-(-n // c) for n, c in
                                                zip(shape, chunks, strict=True)]))
    assert_matches(out.values, chain_reference(arr, steps, mode), steps)


def test_one_stored_read_per_output_chunk():
    arr = make_image((40, 50, 45), "uint16", seed=7)
    mem = write_image(arr, "zyx", (16, 16, 16))
    write_halo(None, mem, for_filter=("gaussian", {"sigma": 2}), progress=False)
    log: list[str] = []
    img = vz.open_image(CountingStore(mem, log))
    out = img.vox.filter("gaussian", sigma=2, halo="require")  # graph built: metadata read
    log.clear()
    got = out.values
    np.testing.assert_array_equal(got, ndi.gaussian_filter(arr, 2))
    n_blocks = 3 * 4 * 3
    assert len(log) == n_blocks
    assert len(set(log)) == n_blocks
    assert all(key.startswith("halo/0/c/") for key in log)
    # the run-time overlap reads the canonical chunks instead (each once, shared)
    log.clear()
    img.vox.filter("gaussian", sigma=2, halo="never").values  # noqa: B018
    assert all(key.startswith("0/c/") for key in log) and len(log) == n_blocks



def test_inner_chunks_split_large_blocks_only():
    from voxzarr.halo.store import inner_chunks

    assert inner_chunks((144, 144, 144), "zyx", 2) == (72, 72, 72)  # 5.97 MB: 8 pieces
    assert inner_chunks((64, 64, 64), "zyx", 2) == (64, 64, 64)       # 0.5 MB: whole
    assert inner_chunks((1, 256, 1024, 1024), "czyx", 2) == (1, 256, 256, 512)  # longest first
    assert inner_chunks((1, 1000, 1000), "tyx", 4) == (1, 250, 500)
    assert inner_chunks((1, 1001, 1001), "tyx", 4) == (1, 1001, 1001)  # no even split


def test_large_blocks_are_one_sharded_object_read_once(monkeypatch):
    """A block over SPLIT_BYTES is one shard of inner chunks: still one object, one read
    and one write per block, and the same values as the unsplit layout."""
    from voxzarr.halo import store as halo_store

    arr = make_image((40, 50, 45), "uint16", seed=3)
    want = ndi.gaussian_filter(arr, 2)
    monkeypatch.setattr(halo_store, "SPLIT_BYTES", 1024)  # 32^3 blocks of 64 KB: split
    mem = write_image(arr, "zyx", (16, 16, 16))
    write_halo(None, mem, for_filter=("gaussian", {"sigma": 2}), progress=False)
    harr = zarr.open_array(mem, path="halo/0", mode="r")
    assert harr.shards == (32, 32, 32) and harr.chunks == (16, 16, 16)
    log: list[str] = []
    img = vz.open_image(CountingStore(mem, log))
    out = img.vox.filter("gaussian", sigma=2, halo="require")
    log.clear()
    np.testing.assert_array_equal(out.values, want)
    assert len(log) == len(set(log)) == 3 * 4 * 3  # one read per block
    h = open_halo(mem)
    np.testing.assert_array_equal(h.core.values, arr)
    np.testing.assert_array_equal(h.block((1, 1, 1)).data, arr[8:40, 8:40, 8:40])
    # a store written before the split (one chunk per block) reads the same
    monkeypatch.setattr(halo_store, "SPLIT_BYTES", 1 << 40)
    old = write_image(arr, "zyx", (16, 16, 16))
    write_halo(None, old, for_filter=("gaussian", {"sigma": 2}), progress=False)
    assert zarr.open_array(old, path="halo/0", mode="r").shards is None
    np.testing.assert_array_equal(
        vz.open_image(old).vox.filter("gaussian", sigma=2, halo="require").values, want)


def test_ngff_04_halo_is_never_sharded(monkeypatch):
    from voxzarr.halo import store as halo_store

    arr = make_image((20, 24, 22), "uint16", seed=4)
    monkeypatch.setattr(halo_store, "SPLIT_BYTES", 1024)
    mem = write_image(arr, "zyx", (8, 8, 8), version="0.4")
    write_halo(None, mem, depth=2, progress=False)
    harr = zarr.open_array(mem, path="halo/0", mode="r")
    assert harr.metadata.zarr_format == 2 and harr.chunks == (12, 12, 12)
    np.testing.assert_array_equal(open_halo(mem).core.values, arr)

def test_map_blocks_user_function_and_depth_check():
    arr = make_image((30, 31), "float32", seed=1)
    store = write_image(arr, "yx", (10, 10))
    write_halo(None, store, depth=6, progress=False)
    h = open_halo(store)
    fn = lambda b: ndi.gaussian_filter(b, 1.5, mode="nearest")  # noqa: E731  radius 6
    out = h.map_blocks(fn, depth=6)
    np.testing.assert_array_equal(out.values, ndi.gaussian_filter(arr, 1.5, mode="nearest"))
    assert out.dims == ("y", "x") and out.vox.voxel_size == {"y": 1.0, "x": 1.0}
    with pytest.raises(HaloError, match="more halo than is stored"):
        h.map_blocks(fn, depth=7)
    with pytest.raises(HaloError, match="outside the block grid"):
        h.block((3, 0))
    with pytest.raises(HaloError, match="keep the shape"):
        h.map_blocks(lambda b: b[1:]).values  # noqa: B018


def test_depth_larger_than_chunk_and_partial_last_chunk():
    arr = make_image((23, 19), "float64", seed=2)
    store = write_image(arr, "yx", (4, 5))
    write_halo(None, store, for_filter=("gaussian", {"sigma": 3.0}), progress=False)
    assert open_halo(store).depth == {"y": 12, "x": 12}
    for mode in ("reflect", "nearest", "mirror", "constant"):
        got = vz.open_image(store).vox.filter("gaussian", sigma=3.0, mode=mode,
                                              halo="require").values
        np.testing.assert_array_equal(got, ndi.gaussian_filter(arr, 3.0, mode=mode))


def test_wrap_needs_a_periodic_halo_and_falls_back_otherwise():
    arr = make_image((20, 22), "float32", seed=3)
    store = write_image(arr, "yx", (8, 8))
    write_halo(None, store, depth=4, progress=False)
    img = vz.open_image(store)
    want = ndi.gaussian_filter(arr, 1.0, mode="wrap")
    with pytest.raises(HaloError, match="periodic"):
        img.vox.filter("gaussian", sigma=1.0, mode="wrap", halo="require")
    np.testing.assert_array_equal(img.vox.filter("gaussian", sigma=1.0, mode="wrap").values,
                                  want)  # auto: run-time overlap with the opposite face
    write_halo(None, store, for_filter=("gaussian", {"sigma": 1.0, "mode": "wrap"}),
               progress=False)
    assert open_halo(store).periodic == ("y", "x")
    got = vz.open_image(store).vox.filter("gaussian", sigma=1.0, mode="wrap", halo="require")
    np.testing.assert_array_equal(got.values, want)


def test_zarr_v2_store_and_time_channel_axes(tmp_path):
    arr = make_image((2, 2, 12, 14), "uint16", seed=4)
    path = tmp_path / "tc.ome.zarr"
    vz.from_array(arr, "tcyx").vox.to_ome_zarr(path, chunks=(1, 1, 5, 6), version="0.4",
                                              progress=False)
    vz.open_image(path).vox.to_halo(path, depth=2, progress=False)
    assert (path / "halo" / "0" / ".zarray").exists()
    h = open_halo(path)
    assert h.depth == {"t": 0, "c": 0, "y": 2, "x": 2}
    got = vz.open_image(path).vox.filter("uniform", size=5, halo="require").values
    want = np.stack([np.stack([ndi.uniform_filter(arr[t, c], 5) for c in range(2)])
                     for t in range(2)])
    np.testing.assert_array_equal(got, want)


def test_halo_per_level_with_physical_sigma(tmp_path):
    a0 = make_image((16, 20, 24), "float32", seed=5)
    a1 = a0[::2, ::2, ::2]
    lv0 = vz.from_array(a0, "zyx", voxel_size={"z": 2.0, "y": 1.0, "x": 1.0})
    lv1 = vz.from_array(a1, "zyx", voxel_size={"z": 4.0, "y": 2.0, "x": 2.0},
                        translation={"z": 1.0, "y": 0.5, "x": 0.5})
    tree = xr.DataTree.from_dict({"0": lv0.to_dataset(name="image"),
                                  "1": lv1.to_dataset(name="image")})
    path = tmp_path / "pyr.ome.zarr"
    vz.to_ome_zarr(tree, path, chunks=(8, 8, 8), progress=False)
    write_halo(None, path, for_filter=("gaussian", {"sigma": 2.0, "units": "physical"}),
               progress=False)
    assert open_halo(path, 0).depth == {"z": 4, "y": 8, "x": 8}  # sigma (1, 2, 2) voxels
    assert open_halo(path, "1").depth == {"z": 2, "y": 4, "x": 4}  # sigma (0.5, 1, 1)
    img1 = vz.open_image(path, level=1)
    got = img1.vox.filter("gaussian", sigma=2.0, units="physical", halo="require").values
    np.testing.assert_array_equal(got, ndi.gaussian_filter(a1, (0.5, 1.0, 1.0)))
    # a level-1 image may add its own halo (checked against the level it matches)
    img1.vox.to_halo(path, depth=1, levels="1", progress=False)
    assert open_halo(path, "1").depth == {"z": 1, "y": 1, "x": 1}
    assert open_halo(path, "0").depth == {"z": 4, "y": 8, "x": 8}  # untouched
    # other NGFF readers still see two levels and nothing else
    import ome_zarr_models.v05 as omz

    image = omz.Image.from_zarr(zarr.open_group(path, mode="r"))
    assert [d.path for d in image.attributes.ome.multiscales[0].datasets] == ["0", "1"]


def test_to_halo_writes_the_image_first_when_missing(tmp_path):
    arr = make_image((9, 10), "uint8", seed=6)
    path = tmp_path / "new.ome.zarr"
    vz.from_array(arr, "yx").vox.to_halo(path, depth=1, chunks=(4, 4), progress=False)
    np.testing.assert_array_equal(vz.open_image(path).values, arr)
    np.testing.assert_array_equal(open_halo(path).core.values, arr)
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]
    assert attrs["voxzarr"]["generation"] == 0 and "ome" in attrs


# --------------------------------------------------------------------------- staleness
def test_stale_halo_is_refused_warned_or_rebuilt(tmp_path):
    arr = make_image((20, 24), "float64", seed=8)
    path = tmp_path / "s.ome.zarr"
    write_image(arr, "yx", (8, 8), store=str(path))
    write_halo(None, path, depth=4, progress=False)
    # someone changes pixels behind voxzarr's back and records it
    zarr.open_array(path / "0", mode="r+")[3:5, 3:5] = 0.0
    arr[3:5, 3:5] = 0.0
    assert bump_generation(path) == 1
    with pytest.raises(StaleHaloError, match="generation 0 != image generation 1"):
        open_halo(path)
    img = vz.open_image(path)
    with pytest.raises(StaleHaloError):
        img.vox.filter("gaussian", sigma=1, halo="require")
    with pytest.warns(UserWarning, match="stale halo"):
        out = img.vox.filter("gaussian", sigma=1)
    np.testing.assert_array_equal(out.values, ndi.gaussian_filter(arr, 1))
    assert [s["fresh"] for s in halo_status(path)] == [False]
    h = open_halo(path, rebuild=True)
    assert h.generation == 1
    np.testing.assert_array_equal(h.core.values, arr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = vz.open_image(path).vox.filter("gaussian", sigma=1, halo="require").values
    np.testing.assert_array_equal(got, ndi.gaussian_filter(arr, 1))


def test_sliced_or_computed_image_does_not_use_the_halo():
    arr = make_image((20, 20), "float32", seed=9)
    store = write_image(arr, "yx", (8, 8))
    write_halo(None, store, depth=4, progress=False)
    img = vz.open_image(store)
    with pytest.raises(HaloError, match="require"):
        img[2:].vox.filter("gaussian", sigma=1, halo="require")
    with pytest.raises(HaloError, match="require"):
        (img + 1).vox.filter("gaussian", sigma=1, halo="require")
    got = img[2:].vox.filter("gaussian", sigma=1).values  # auto: run-time overlap
    np.testing.assert_array_equal(got, ndi.gaussian_filter(arr[2:], 1))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(st.integers(0, 29), st.integers(1, 12)),
       st.tuples(st.integers(0, 25), st.integers(1, 12)), st.integers(0, 2**16))
def test_write_region_rebuilds_exactly_the_touched_blocks(ry, rx, seed):
    arr = make_image((30, 26), "uint16", seed=seed % 7)
    store = write_image(arr, "yx", (7, 6))
    write_halo(None, store, depth={"y": 3, "x": 8}, progress=False)
    region = (slice(ry[0], min(30, ry[0] + ry[1])), slice(rx[0], min(26, rx[0] + rx[1])))
    new = make_image(arr[region].shape, "uint16", seed=seed)
    before = zarr.open_array(store, path="halo/0", mode="r")[:]
    report = write_region(store, region, new)
    arr[region] = new
    after = zarr.open_array(store, path="halo/0", mode="r")[:]
    # the same halo built from scratch
    ref = write_image(arr, "yx", (7, 6))
    write_halo(None, ref, depth={"y": 3, "x": 8}, progress=False)
    np.testing.assert_array_equal(after, zarr.open_array(ref, path="halo/0", mode="r")[:])
    # exactly the blocks whose valid part overlaps the region were rewritten
    layout = open_halo(store).layout
    touched = []
    for index in layout.blocks():
        valid = [a.valid(k) for a, k in zip(layout.axes, index, strict=True)]
        if all(lo < s.stop and s.start < hi for (lo, hi), s in zip(valid, region,
                                                                    strict=True)):
            touched.append(index)
    assert report.rebuilt == {"0": len(touched)}
    assert report.generation == 1 and image_generation(zarr.open_group(store)) == 1
    for index in layout.blocks():
        sl = layout.stored_slices(index)
        if index not in touched:
            np.testing.assert_array_equal(before[sl], after[sl])
    np.testing.assert_array_equal(vz.open_image(store).values, arr)
    got = vz.open_image(store).vox.filter("gaussian", sigma=0.7, halo="require").values
    np.testing.assert_array_equal(got, ndi.gaussian_filter(arr, 0.7))


def test_write_region_keeps_stale_halos_stale_and_checks_input():
    arr = make_image((12, 12), "uint8", seed=1)
    store = write_image(arr, "yx", (4, 4))
    write_halo(None, store, depth=2, progress=False)
    bump_generation(store)
    report = write_region(store, {"y": slice(0, 2)}, np.ones((2, 12), np.uint8))
    assert report.stale == ("0",) and report.rebuilt == {}
    with pytest.raises(StaleHaloError):
        open_halo(store)
    with pytest.raises(VoxzarrError, match="region shape"):
        write_region(store, (slice(0, 2), slice(0, 3)), np.ones((2, 2)))
    with pytest.raises(VoxzarrError, match="outside"):
        write_region(store, (slice(0, 20),), np.ones((20, 12)))
    with pytest.raises(VoxzarrError, match="level"):
        write_region(store, (slice(0, 2),), np.ones((2, 12)), level=3)


# --------------------------------------------------------------------------- bad input
def test_bad_halo_input_is_a_voxzarr_error(tmp_path):
    arr = make_image((10, 10), "uint8", seed=0)
    store = write_image(arr, "yx", (5, 5))
    with pytest.raises(HaloError, match="no halo for level"):
        open_halo(store)
    with pytest.raises(VoxzarrError, match="no level"):
        write_halo(None, store, depth=1, levels=[4], progress=False)
    with pytest.raises(HaloError, match="smaller than the filter needs"):
        write_halo(None, store, depth=3, for_filter=("gaussian", {"sigma": 1.0}))
    with pytest.raises(HaloError, match="depth= "):
        write_halo(None, store)
    with pytest.raises(HaloError, match="non-negative"):
        write_halo(None, store, depth=-1)
    with pytest.raises(VoxzarrError, match="unknown filter"):
        write_halo(None, store, for_filter=("blur", {}))
    with pytest.raises(VoxzarrError, match="sigma"):
        write_halo(None, store, for_filter=("gaussian", {"sigma": -2}))
    with pytest.raises(HaloError, match="is not one stored here"):
        write_halo(vz.from_array(np.zeros((3, 3)), "yx"), store, depth=1)
    write_halo(None, store, depth=1, progress=False)
    with pytest.raises(HaloError, match="more halo than is stored"):
        vz.open_image(store).vox.filter("gaussian", sigma=1, halo="require")
    with pytest.raises(VoxzarrError, match="zip"):
        write_halo(None, tmp_path / "x.zip", depth=1)
    # a tampered layout is refused with the field named
    harr = zarr.open_array(store, path="halo/0", mode="r+")
    harr.attrs["voxzarr"] = {**harr.attrs["voxzarr"], "version": 99}
    with pytest.raises(VoxzarrError, match="version"):
        open_halo(store)


# --------------------------------------------------------------------------- find depth
def test_find_halo_depth_gaussian_and_non_local():
    arr = make_image((40, 44), "float64", seed=11)
    img = vz.from_array(arr, "yx").chunk(16)
    rep = img.vox.find_halo_depth(lambda b: ndi.gaussian_filter(b, 2.0), max_depth=32)
    assert rep.depth == 8 and rep.exact
    assert rep.max_diff[8] == 0.0 and rep.max_diff[7] > 0.0
    assert "seam-free depth: 8" in str(rep)
    rep = find_halo_depth(img, lambda b: ndi.median_filter(b, 5), max_depth=8)
    assert rep.depth == 2
    # the spline prefilter is IIR: never exact, but the error falls with depth
    rep = find_halo_depth(img, lambda b: ndi.spline_filter(b, 3), max_depth=16)
    assert rep.depth is None and not rep.exact
    assert rep.max_diff[16] < rep.max_diff[4] < rep.max_diff[0]
    rep = find_halo_depth(img, lambda b: ndi.spline_filter(b, 3), max_depth=32, atol=1e-6)
    assert rep.depth is not None and rep.max_diff[rep.depth] <= 1e-6


def test_tiled_apply_equals_whole_with_enough_depth():
    arr = make_image((21, 17), "float32", seed=12)
    fn = lambda b: ndi.uniform_filter(b, 3, mode="mirror")  # noqa: E731
    np.testing.assert_array_equal(tiled_apply(arr, fn, (5, 4), (1, 1)), fn(arr))
    assert not np.array_equal(tiled_apply(arr, fn, (5, 4), (0, 0)), fn(arr))


def test_layout_blocks_touching_matches_brute_force():
    layout = HaloLayout.regular("yx", (17, 9), (5, 4), (2, 6), (False, True))
    got = set(layout.blocks_touching((slice(4, 6), slice(0, 1))))
    want = set()
    for index in layout.blocks():
        hit = []
        for a, k, (lo, hi) in zip(layout.axes, index, ((4, 6), (0, 1)), strict=True):
            pos = np.arange(*a.valid(k)) % a.size
            hit.append(bool(((pos >= lo) & (pos < hi)).any()))
        if all(hit):
            want.add(index)
    assert got == want and len(got) == 2 * 3


# --------------------------------------------------------------------------- command line
def test_cli_halo_and_filter(tmp_path, capsys):
    from voxzarr.cli import main

    arr = make_image((12, 14, 16), "uint16", seed=13)
    src = tmp_path / "in.ome.zarr"
    write_image(arr, "zyx", (6, 7, 8), store=str(src))
    assert main(["halo", str(src), "--filter", "gaussian", "--param", "sigma=1.5",
                 "--no-progress"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status[0]["depth"] == {"z": 6, "y": 6, "x": 6} and status[0]["fresh"]
    out = tmp_path / "out.ome.zarr"
    assert main(["filter", str(src), str(out), "gaussian", "--param", "sigma=1.5",
                 "--mode", "nearest", "--require-halo", "--no-progress"]) == 0
    np.testing.assert_array_equal(vz.open_image(out).values,
                                  ndi.gaussian_filter(arr, 1.5, mode="nearest"))
    assert main(["halo", str(src), "--check"]) == 0
    assert main(["halo", str(src), "--depth", "z=1,y=2,x=3", "--no-progress"]) == 0
    assert open_halo(src).depth == {"z": 1, "y": 2, "x": 3}
    with pytest.raises(SystemExit) as stop:  # argparse lists the filters it accepts
        main(["filter", str(src), str(tmp_path / "o2"), "--filter", "nope", "--no-progress"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "gaussian_laplace" in err
