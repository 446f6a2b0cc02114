"""Image <-> series transpose: round trips, one-read series, NGFF interop, resume, errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from zarr.storage import MemoryStore, WrapperStore

import voxzarr as vz
from voxzarr.errors import (
    GeometryError,
    MetadataError,
    OverwriteError,
    StoreError,
    VoxzarrError,
)
from voxzarr.series import open_series, series_info, to_images, to_series

ROOT = Path(__file__).resolve().parents[2]


def _movie(shape=(30, 40, 50), dims="tyx", seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, shape).astype(np.uint16)


def _image(arr, dims="tyx", chunks=None):
    data = arr if chunks is None else da.from_array(arr, chunks=chunks)
    vs = {d: 0.5 + i for i, d in enumerate(dims) if d != "c"}
    return vz.from_array(data, dims=dims, voxel_size=vs, translation={dims[-1]: 3.0})


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- round trips
SHAPES = {
    "tx": st.tuples(st.integers(1, 12), st.integers(1, 40)),
    "tyx": st.tuples(st.integers(1, 12), st.integers(1, 20), st.integers(1, 20)),
    "tcyx": st.tuples(st.integers(1, 8), st.integers(1, 3), st.integers(1, 12),
                      st.integers(1, 12)),
    "tzyx": st.tuples(st.integers(1, 8), st.integers(1, 6), st.integers(1, 10),
                      st.integers(1, 10)),
}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dims=st.sampled_from(sorted(SHAPES)),
    data=st.data(),
    budget=st.integers(6_000, 400_000),
    source=st.sampled_from(["numpy", "dask", "zarr"]),
    staging=st.sampled_from(["auto", True, False]),
    sharded=st.booleans(),
)
def test_round_trip_is_identical(dims, data, budget, source, staging, sharded):
    shape = data.draw(SHAPES[dims], label="shape")
    arr = np.random.default_rng(sum(shape)).integers(0, 60000, shape).astype(np.uint16)
    chunks = tuple(data.draw(st.integers(1, n), label="chunk") for n in shape)
    img = _image(arr, dims, chunks if source == "dask" else None)
    if source == "zarr":
        store = MemoryStore()
        img.vox.to_ome_zarr(store, chunks=chunks)
        img = vz.open_image(store)
    shards = None
    if sharded:
        shards = {d: 2 * n for d, n in zip(dims, shape, strict=True) if d in "zyx"}
    ser_store, img_store = MemoryStore(), MemoryStore()
    try:
        to_series(img, ser_store, memory=budget, staging=staging, block=2 if sharded else None,
                  shards=shards, threads=2)
    except VoxzarrError as err:
        assume(err.field not in ("memory", "staging"))
        raise
    ser = open_series(ser_store)
    np.testing.assert_array_equal(ser.values, arr)
    assert ser.dims == img.dims
    assert ser.vox.scale == img.vox.scale and ser.vox.origin == img.vox.origin
    stored = zarr.open_array(ser_store, path="0", mode="r")
    assert stored.chunks[0] == shape[0]  # every chunk holds whole series
    if stored.shards is not None:
        assert stored.shards[0] == shape[0]
    try:
        to_images(ser, img_store, memory=budget, staging=staging, threads=2)
    except VoxzarrError as err:
        assume(err.field not in ("memory", "staging"))
        raise
    back = vz.open_image(img_store)
    np.testing.assert_array_equal(back.values, arr)
    assert back.vox.scale == img.vox.scale
    assert zarr.open_array(img_store, path="0", mode="r").chunks[0] == 1


def test_local_round_trip_and_metadata(tmp_path):
    arr = _movie()
    img = _image(arr)
    src = tmp_path / "src.ome.zarr"
    img.vox.to_ome_zarr(src, chunks=(1, 40, 50))
    out = tmp_path / "movie.series.zarr"
    assert vz.open_image(src).vox.to_series(out, memory="8MB", source=src) == out
    info = series_info(out)
    assert info["layout"] == "series" and info["complete"] is True
    assert info["version"] == "0.1"
    assert info["block"] == {"y": 40, "x": 50}
    assert info["source"]["location"] == str(src)
    assert info["source"]["chunks"] == [1, 40, 50]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # partial renamed
    ser = vz.open_series(out)
    np.testing.assert_array_equal(ser.values, arr)
    assert ser.data.chunksize == (30, 40, 50)
    back = tmp_path / "back.ome.zarr"
    ser.vox.to_images(back, memory="2MB")
    np.testing.assert_array_equal(vz.open_image(back).values, arr)
    assert "voxzarr" not in zarr.open_group(back, mode="r").attrs


def test_ngff_readers_open_the_series_layout(tmp_path):
    ngff_zarr = pytest.importorskip("ngff_zarr")
    from ome_zarr_models.v05 import Image

    arr = _movie((12, 24, 32))
    out = tmp_path / "s.zarr"
    to_series(_image(arr), out, memory="1MB", block=(8, 8))
    Image.from_zarr(zarr.open_group(out, mode="r"))  # validates the NGFF 0.5 metadata
    ms = ngff_zarr.from_ngff_zarr(str(out))
    np.testing.assert_array_equal(np.asarray(ms.images[0].data), arr)
    assert tuple(ms.images[0].dims) == ("t", "y", "x")
    assert ms.images[0].scale == {"t": 0.5, "y": 1.5, "x": 2.5}
    arr_meta = zarr.open_array(out / "0", mode="r")
    assert arr_meta.metadata.dimension_names == ("t", "y", "x")
    assert arr_meta.chunks == (12, 8, 8)


# ----------------------------------------------------------------------------- one read
_GETS: list = []


class _CountingStore(WrapperStore):
    """Records every ``get`` (key, byte range); copies made by zarr share the list."""

    async def get(self, key, prototype, byte_range=None):
        _GETS.append((key, byte_range))
        return await self._store.get(key, prototype, byte_range)


@pytest.mark.parametrize("shards", [None, (20, 20)])
def test_one_voxel_series_is_one_read(shards):
    arr = _movie((30, 40, 50))
    store = _CountingStore(MemoryStore())
    to_series(_image(arr), store, memory="4MB", block=(10, 5), shards=shards or False)
    ser = vz.open_series(store)
    _GETS.clear()
    np.testing.assert_array_equal(ser.isel(y=13, x=17).values, arr[:, 13, 17])
    keys = {k for k, _ in _GETS}
    assert len(keys) == 1  # one chunk (or one shard) holds the whole series
    if shards is None:
        assert _GETS == [("0/c/0/1/3", None)]  # exactly one read of one chunk
    else:
        assert len(_GETS) == 2  # the shard index, then the one inner chunk
    # the image layout needs one read per timepoint for the same series
    img_store = _CountingStore(MemoryStore())
    _image(arr).vox.to_ome_zarr(img_store, chunks=(1, 40, 50))
    img = vz.open_image(img_store)
    _GETS.clear()
    np.testing.assert_array_equal(img.isel(y=13, x=17).values, arr[:, 13, 17])
    assert len(_GETS) == 30


# ----------------------------------------------------------------------------- real data
@pytest.mark.parametrize("name", ["cancer_cell_migration_crop.tif", "membrane_2d_timelapse.tif"])
def test_real_timelapse_whole_path(data_dir, tmp_path, name):
    tifffile = pytest.importorskip("tifffile")
    arr = tifffile.imread(data_dir / "timelapse" / name)
    img = vz.from_array(arr, dims="tyx", voxel_size={"t": 1.0, "y": 0.5, "x": 0.5})
    src = tmp_path / "src.ome.zarr"
    img.vox.to_ome_zarr(src, chunks=(1, 64, 64))
    budget = arr.nbytes // 3  # several tasks
    out = tmp_path / "series.zarr"
    vz.open_image(src).vox.to_series(out, memory=budget)
    ser = vz.open_series(out)
    np.testing.assert_array_equal(ser.values, arr)
    assert ser.vox.voxel_size == {"y": 0.5, "x": 0.5}
    np.testing.assert_allclose(ser.vox.series.mean_map().values, arr.mean(axis=0))
    np.testing.assert_allclose(ser.vox.series.mean_trace().values, arr.mean(axis=(1, 2)))
    back = tmp_path / "back.ome.zarr"
    ser.vox.to_images(back, memory=budget)
    np.testing.assert_array_equal(vz.open_image(back).values, arr)


def test_tiff_through_convert_then_series(data_dir, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tif = data_dir / "timelapse" / "membrane_2d_timelapse.tif"
    src = tmp_path / "conv.ome.zarr"
    vz.convert(tif, src, axes="tyx", voxel_size={"y": 0.1, "x": 0.1}, unit="micrometer",
               time_interval=2.0, progress=False)
    out = tmp_path / "s.zarr"
    vz.open_image(src).vox.to_series(out, memory="2MB", source=src)
    ser = vz.open_series(out)
    np.testing.assert_array_equal(ser.values, tifffile.imread(tif))
    assert ser.vox.scale == {"t": 2.0, "y": 0.1, "x": 0.1}
    assert ser.vox.units["y"] == "micrometer"


# ----------------------------------------------------------------------------- resume
_KILLER = textwrap.dedent("""
    import os, signal, sys
    import voxzarr as vz
    from voxzarr.series import to_series
    from voxzarr.series.executor import ChunkCodec

    src, out, memory, staging, kill_after = sys.argv[1:6]
    kill_after = int(kill_after)
    original = ChunkCodec.write
    count = [0]

    def dying_write(self, coords, data):  # every chunk write of the conversion
        count[0] += 1
        if count[0] > kill_after:  # killed mid-task: some chunks written, marker not
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, coords, data)

    ChunkCodec.write = dying_write
    staging = {"on": True, "off": False}[staging]
    to_series(vz.open_image(src), out, memory=memory, staging=staging, threads=1)
""")


# (40, 128, 96) uint16 at 400KB with one thread: direct = 4 tasks of 24 chunk writes;
# staged = 7 stage tasks of 16 scratch-chunk writes, then 4 write tasks of 24
@pytest.mark.parametrize("staging,kill_after,where", [
    ("off", 30, (0, 1)),  # in the second task
    ("on", 20, (0, 1)),  # in the second stage task
    ("on", 7 * 16 + 30, (1, 1)),  # in the second write task
])
def test_killed_conversion_resumes_identically(tmp_path, staging, kill_after, where):
    arr = _movie((40, 128, 96), seed=3)
    src = tmp_path / "src.ome.zarr"
    _image(arr).vox.to_ome_zarr(src, chunks=(1, 128, 96))
    memory = "400KB"
    script = tmp_path / "killer.py"
    script.write_text(_KILLER)
    out = tmp_path / "out.zarr"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(script), str(src), str(out), memory, staging,
                           str(kill_after)], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()  # the destination never holds a partial store
    partial = tmp_path / ".out.zarr.voxzarr-partial"
    state = zarr.open_group(partial, mode="r").attrs["voxzarr"]
    assert state["complete"] is False
    done = state["progress"]
    assert (done["phase"], done["next"]) == where  # finished tasks were recorded
    with pytest.raises(StoreError, match="did not finish"):
        vz.open_series(out)
    with pytest.raises(MetadataError):
        vz.open_image(partial)  # no NGFF metadata yet: not an image
    flag = staging == "on"
    to_series(vz.open_image(src), out, memory=memory, staging=flag, threads=1)
    fresh = tmp_path / "fresh.zarr"
    to_series(vz.open_image(src), fresh, memory=memory, staging=flag, threads=1)
    assert _files(out) == _files(fresh)
    np.testing.assert_array_equal(vz.open_series(out).values, arr)


def test_resume_with_other_options_restarts(tmp_path):
    arr = _movie((20, 30, 30))
    out = tmp_path / "o.zarr"
    partial = tmp_path / ".o.zarr.voxzarr-partial"
    img = _image(arr)
    # an unfinished conversion made with another budget is stale and replaced
    to_series(img, zarr.storage.LocalStore(partial), memory="2MB")
    g = zarr.open_group(partial, mode="r+")
    state = dict(g.attrs["voxzarr"])
    g.attrs.put({"voxzarr": {**state, "complete": False, "progress": {"phase": 0, "next": 0}}})
    to_series(img, out, memory="1MB", block=(10, 10))
    assert series_info(out)["block"] == {"y": 10, "x": 10}
    np.testing.assert_array_equal(vz.open_series(out).values, arr)
    assert not partial.exists()


def test_in_place_store_is_not_complete_until_the_end():
    arr = _movie((10, 12, 14))
    store = MemoryStore()
    to_series(_image(arr), store, memory="1MB")
    root = zarr.open_group(store, mode="r+")
    attrs = root.attrs.asdict()
    # an interrupted in-place conversion: marker without NGFF metadata
    root.attrs.put({"voxzarr": {**attrs["voxzarr"], "complete": False}})
    with pytest.raises(StoreError, match="did not finish"):
        vz.open_series(store)
    with pytest.raises(MetadataError):
        vz.open_image(store)


# ----------------------------------------------------------------------------- bad input
def test_no_time_axis():
    img = vz.from_array(np.zeros((4, 5, 6), np.uint16), dims="zyx")
    with pytest.raises(GeometryError, match="time axis") as err:
        to_series(img, MemoryStore())
    assert err.value.field == "dims"
    with pytest.raises(VoxzarrError, match="'t' axis"):
        img.vox.series.mean_map()


def test_budget_smaller_than_one_block(tmp_path):
    img = _image(_movie((48, 130, 130)))
    with pytest.raises(VoxzarrError, match="smaller than one series block") as err:
        img.vox.to_series(tmp_path / "x.zarr", memory="100KB", block=(64, 64))
    assert err.value.field == "memory"
    assert not list(tmp_path.iterdir())  # nothing written
    with pytest.raises(VoxzarrError, match="memory size"):
        img.vox.to_series(tmp_path / "x.zarr", memory="plenty")


def test_failed_overwrite_keeps_the_old_store(tmp_path):
    arr = _movie((10, 20, 20))
    out = tmp_path / "s.zarr"
    to_series(_image(arr), out, memory="1MB")
    before = _files(out)
    with pytest.raises(OverwriteError):
        to_series(_image(arr + 1), out, memory="1MB")
    with pytest.raises(VoxzarrError, match="smaller than one series block"):
        to_series(_image(arr + 1), out, memory="10KB", block=20, overwrite=True)
    assert _files(out) == before
    to_series(_image(arr + 1), out, memory="1MB", overwrite=True)
    np.testing.assert_array_equal(vz.open_series(out).values, arr + 1)


def test_open_series_refuses_other_stores(tmp_path):
    img = _image(_movie((4, 6, 6)))
    plain = tmp_path / "plain.ome.zarr"
    img.vox.to_ome_zarr(plain)
    with pytest.raises(MetadataError, match="not a voxzarr series") as err:
        vz.open_series(plain)
    assert err.value.field == "voxzarr.layout"
    with pytest.raises(StoreError):
        vz.open_series(tmp_path / "missing.zarr")
    with pytest.raises(StoreError, match="zip"):
        to_series(img, tmp_path / "s.zip")


def test_uniform_coordinates_are_required():
    img = _image(_movie((5, 6, 7)))
    img = img.assign_coords(t=np.array([0.0, 1.0, 2.0, 4.0, 8.0]))
    with pytest.raises(GeometryError):
        to_series(img, MemoryStore())


# ----------------------------------------------------------------------------- CLI
def test_cli_series_both_ways(tmp_path, capsys):
    from voxzarr.cli import main

    arr = _movie((12, 20, 24))
    src = tmp_path / "src.ome.zarr"
    _image(arr).vox.to_ome_zarr(src, chunks=(1, 20, 24))
    out = tmp_path / "s.zarr"
    assert main(["series", str(src), str(out), "--memory", "1MB", "--block", "y=10,x=8",
                 "--no-progress"]) == 0
    assert "chunks (12, 10, 8)" in capsys.readouterr().out
    back = tmp_path / "b.ome.zarr"
    assert main(["series", str(out), str(back), "--to-images", "--no-progress"]) == 0
    np.testing.assert_array_equal(vz.open_image(back).values, arr)
    assert main(["series", str(src), str(out), "--no-progress"]) == 1  # exists
    assert "already exists" in capsys.readouterr().err
    assert main(["series", str(src), str(tmp_path / "t.zarr"), "--memory", "2KB",
                 "--no-progress"]) == 1
    assert "smaller than one series block" in capsys.readouterr().err


# ----------------------------------------------------------------------------- executor
@pytest.mark.parametrize("cname,clevel", [("zstd", 3), ("lz4", 1), (None, 0)])
def test_direct_chunk_writes_are_zarrs_bytes(cname, clevel):
    from zarr.codecs import BloscCodec

    from voxzarr.series.executor import ChunkCodec, ZarrReader

    arr = _movie((7, 10, 9))
    arr[:, 8:, :] = 0  # chunks holding only the fill value are left out, as zarr does
    kw = dict(shape=arr.shape, dtype=arr.dtype, chunks=(7, 4, 4), fill_value=0,
              compressors=None if cname is None else BloscCodec(cname=cname, clevel=clevel,
                                                                shuffle="shuffle"))
    by_zarr, direct = MemoryStore(), MemoryStore()
    zarr.create_array(by_zarr, name="0", **kw)[...] = arr
    writer = ChunkCodec.for_array(zarr.create_array(direct, name="0", **kw))
    for i in range(3):
        for j in range(3):
            writer.write((0, i, j), arr[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4])
    assert sorted(direct._store_dict) == sorted(by_zarr._store_dict)
    for key, value in by_zarr._store_dict.items():
        assert direct._store_dict[key].to_bytes() == value.to_bytes(), key
    # and the direct reader gives back what zarr reads, fill where nothing is stored
    got = np.zeros(arr.shape, arr.dtype) + 7
    region = (slice(0, 7), slice(0, 10), slice(0, 9))
    reader = ZarrReader(zarr.open_array(direct, path="0", mode="r"), threads=2)
    assert reader.codec is not None
    reader.read(region, got)
    np.testing.assert_array_equal(got, arr)
    part = np.empty((7, 5, 6), arr.dtype)
    reader.read((slice(0, 7), slice(3, 8), slice(2, 8)), part)
    np.testing.assert_array_equal(part, arr[:, 3:8, 2:8])


def _shard_parts(raw: bytes, per: tuple[int, ...]) -> dict[tuple[int, ...], bytes]:
    """Inner chunk bytes of one shard by inner chunk position, read through its index."""
    n = int(np.prod(per))
    index = np.frombuffer(raw[-(16 * n + 4):-4], dtype="<u8").reshape(*per, 2)
    return {pos: raw[int(index[pos][0]):int(index[pos][0] + index[pos][1])]
            for pos in np.ndindex(*per) if index[pos][0] != np.iinfo(np.uint64).max}


@pytest.mark.parametrize("cname", ["zstd", None])
def test_direct_shard_writes_are_read_by_zarr(cname):
    from zarr.codecs import BloscCodec

    from voxzarr.series.executor import ChunkCodec

    arr = _movie((7, 21, 18))
    arr[:, 8:12, :] = 0  # inner chunks holding only the fill value are left out of a shard
    arr[:, 16:, :] = 0  # and the shards holding nothing else are not stored at all
    kw = dict(shape=arr.shape, dtype=arr.dtype, chunks=(7, 4, 4), shards=(7, 8, 12),
              fill_value=0, compressors=None if cname is None else BloscCodec(
                  cname=cname, clevel=3, shuffle="shuffle"))
    by_zarr, direct = MemoryStore(), MemoryStore()
    zarr.create_array(by_zarr, name="0", **kw)[...] = arr
    writer = ChunkCodec.for_array(zarr.create_array(direct, name="0", **kw))
    assert writer is not None and writer.sharded
    for i in range(3):  # edge shards overhang the array along y and x
        for j in range(2):
            writer.write((0, i, j), arr[:, 8 * i:8 * i + 8, 12 * j:12 * j + 12])
    back = zarr.open_array(direct, path="0", mode="r")
    np.testing.assert_array_equal(back[...], arr)
    np.testing.assert_array_equal(back[:, 5, 13], arr[:, 5, 13])  # one inner chunk
    assert sorted(direct._store_dict) == sorted(by_zarr._store_dict)
    assert "0/c/0/2/0" not in direct._store_dict
    for key, value in by_zarr._store_dict.items():
        if key.endswith("zarr.json"):
            continue
        # the same inner chunks, byte for byte (zarr orders them differently in the file)
        assert _shard_parts(direct._store_dict[key].to_bytes(), (1, 2, 3)) == _shard_parts(
            value.to_bytes(), (1, 2, 3)), key


def test_sharded_series_is_written_directly(tmp_path, monkeypatch):
    from voxzarr.series.executor import ChunkCodec

    arr = _movie((12, 40, 36))
    units: list[tuple[int, ...]] = []
    original = ChunkCodec.write

    def counting(self, coords, data):
        units.append(coords)
        original(self, coords, data)

    monkeypatch.setattr(ChunkCodec, "write", counting)
    out = tmp_path / "s.zarr"
    to_series(_image(arr), out, memory="2MB", block=(4, 6), shards=(16, 18))
    stored = zarr.open_array(out / "0", mode="r")
    assert stored.shards == (12, 16, 18) and stored.chunks == (12, 4, 6)
    assert sorted(units) == [(0, i, j) for i in range(3) for j in range(2)]  # every shard
    np.testing.assert_array_equal(stored[...], arr)  # zarr reads them back
    np.testing.assert_array_equal(vz.open_series(out).values, arr)
    back = tmp_path / "back.ome.zarr"
    to_images(vz.open_series(out), back, memory="2MB")
    np.testing.assert_array_equal(vz.open_image(back).values, arr)


def test_progress_bar_counts_every_task(tmp_path, monkeypatch):
    import voxzarr.series.transpose as tr

    seen: list[tuple[int, int]] = []

    class Bar(tr.tqdm):
        def update(self, n=1):
            seen.append((n, self.total))
            return super().update(n)

    monkeypatch.setattr(tr, "tqdm", Bar)
    arr = _movie((50, 64, 64))
    src = tmp_path / "src.ome.zarr"
    _image(arr).vox.to_ome_zarr(src, chunks=(1, 64, 64))
    to_series(vz.open_image(src), tmp_path / "s.zarr", memory="200KB", threads=1,
              staging=False, progress=True)
    assert len(seen) == 4  # one update per task of the plan
    assert sum(n for n, _ in seen) == seen[0][1] == arr.nbytes
