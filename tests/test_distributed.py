"""voxzarr on a ``dask.distributed`` cluster of worker processes.

Every operation runs once on the local threaded scheduler (the reference) and once on a
``LocalCluster(processes=True)``; the results must be identical, and the cluster must really
have run tasks. Graphs are checked for size: each task must pickle small (no store contents,
no pixel data), since a worker process gets everything by pickle.

The module skips as a whole without ``distributed`` or ``cloudpickle``; voxzarr's own modules
are imported plainly, so an import error there fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import dask.threaded
import numpy as np
import pytest
import xarray as xr
import zarr
from _s3server import CREDENTIALS, S3, s3_server  # noqa: F401  (fixture `s3`)
from dask.utils import ensure_dict
from scipy import ndimage as ndi

import voxzarr as vz
from voxzarr import filters, halo, ndinterp, pyramid, resample, series
from voxzarr.cli import main

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

#: The stated graph bounds. Test chunks hold 64 KiB of pixels (16 x 32 x 32 float32), so a
#: task carrying even a quarter chunk of pixel data breaks TASK_BYTES; measured tasks are
#: 0.2-3 KB (the biggest: a reader holding zarr metadata and the store's path or URL).
TASK_BYTES = 16_000
#: whole graph, pickled, divided by its number of output chunks (measured 0.05-1 KB for
#: reads, writes and filters; up to 3.8 KB for one-chunk pyramid levels and resampling,
#: whose few output chunks carry the graph of every input chunk they reduce)
GRAPH_BYTES_PER_CHUNK = 8_000
CHUNKS = (16, 32, 32)
SHAPE = (32, 64, 96)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two single-threaded worker processes, shared by the module (a start costs seconds)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(42).random(SHAPE).astype("float32")


@pytest.fixture(scope="module")
def stored(tmp_path_factory, pixels) -> Path:
    """An NGFF 0.5 image written with the threaded scheduler."""
    path = tmp_path_factory.mktemp("src") / "image.ome.zarr"
    img = vz.from_array(pixels, "zyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5},
                        translation={"x": 7.0})
    with threads():
        vz.to_ome_zarr(img, path, chunks=CHUNKS)
    return path


# --------------------------------------------------------------------------- helpers
@contextmanager
def threads() -> Iterator[None]:
    """The local threaded scheduler, even while the module's Client is the default."""
    with dask.config.set(scheduler="threads"):
        yield


@contextmanager
def on_cluster(client: Any, min_tasks: int = 1) -> Iterator[list]:
    """Run the block on the cluster and check it did run tasks on the worker processes."""
    with distributed.get_task_stream(client) as ts:
        yield ts.data
    workers = {t["worker"] for t in ts.data}
    assert len(ts.data) >= min_tasks, f"only {len(ts.data)} tasks ran on the cluster"
    assert workers <= set(client.scheduler_info()["workers"])


class Recorder:
    """A threaded scheduler that keeps every graph it is given (to measure graphs)."""

    def __init__(self) -> None:
        self.graphs: list[dict] = []

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        graph = dsk.__dask_graph__() if hasattr(dsk, "__dask_graph__") else dsk
        self.graphs.append(ensure_dict(graph))
        return dask.threaded.get(dsk, keys, **kwargs)

    @contextmanager
    def active(self) -> Iterator[Recorder]:
        with dask.config.set(scheduler=self):
            yield self


def check_graph(graph: Any, n_chunks: int) -> tuple[int, int]:
    """Assert the stated bounds; return (bytes per chunk, largest task)."""
    graph = ensure_dict(graph)
    total = len(cloudpickle.dumps(graph))
    largest = max(len(cloudpickle.dumps(task)) for task in graph.values())
    assert largest < TASK_BYTES, f"a task pickles to {largest} bytes"
    assert total / n_chunks < GRAPH_BYTES_PER_CHUNK, f"{total / n_chunks:.0f} B per chunk"
    return total // n_chunks, largest


def n_stored_chunks(location: Any) -> int:
    root = zarr.open_group(location, mode="r")
    return sum(int(np.prod(a.cdata_shape)) for _, a in root.arrays())


def assert_same_store(a: Any, b: Any, ignore_attrs: tuple[str, ...] = ()) -> int:
    """Same groups, attributes, arrays (metadata and values) at every path; returns the
    number of arrays compared."""
    ra, rb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    na = dict(ra.members(max_depth=None))
    nb = dict(rb.members(max_depth=None))
    assert sorted(na) == sorted(nb)
    n = 0
    for path, node in [("", ra), *na.items()]:
        other = rb[path] if path else rb
        strip = {k: v for k, v in node.attrs.asdict().items() if k not in ignore_attrs}
        assert strip == {k: v for k, v in other.attrs.asdict().items()
                         if k not in ignore_attrs}, path
        if isinstance(node, zarr.Array):
            assert (node.shape, node.dtype, node.chunks, node.shards) == (
                other.shape, other.dtype, other.chunks, other.shards), path
            np.testing.assert_array_equal(node[...], other[...], err_msg=path)
            n += 1
    return n


def _reader(img: xr.DataArray) -> Any:
    """The one object of an opened image's graph that names the store."""
    from voxzarr.io import _ChunkReader

    for value in ensure_dict(img.data.__dask_graph__()).values():
        value = getattr(value, "value", value)  # a task-spec DataNode holds it
        if isinstance(value, _ChunkReader):
            return value
    raise AssertionError("no chunk reader in the graph")


def _wrote(key: Any) -> bool:
    """Whether a task (possibly fused with its inputs) stored pixels with ``da.store``."""
    return "store-map" in str(key[0] if isinstance(key, tuple) else key)


def _image(pixels: np.ndarray) -> xr.DataArray:
    return vz.from_array(pixels, "zyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})


# --------------------------------------------------------------------------- I/O
def test_open_image_compute(client, stored, pixels):
    img = vz.open_image(stored)
    with threads():
        ref = img.values
    with on_cluster(client, min_tasks=img.data.npartitions):
        got = img.compute()
    np.testing.assert_array_equal(got.values, ref)
    np.testing.assert_array_equal(got.values, pixels)
    xr.testing.assert_identical(got, img.compute(scheduler="threads"))
    check_graph(img.data.__dask_graph__(), img.data.npartitions)


def test_chunk_reader_pickles_small_and_reopens(stored, pixels):
    img = vz.open_image(stored)
    reader = _reader(img)
    blob = pickle.dumps(reader)
    assert len(blob) < 4_000  # metadata and the store path, never the store's contents
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again[(slice(0, 2), slice(5, 9), slice(0, 3))],
                                  pixels[:2, 5:9, :3])


def test_memory_fsspec_store_is_not_shipped_to_workers(client):
    """memory:// is empty in every other process: reading it there would give fill values,
    so the graph refuses to be pickled; in this process it reads fine."""
    img = vz.from_array(np.arange(1, 25, dtype="uint8").reshape(2, 3, 4), "zyx")
    url = "memory://voxzarr-distributed-test/x.ome.zarr"
    vz.to_ome_zarr(img, url, overwrite=True)  # written from this process despite the client
    back = vz.open_image(url)
    with pytest.raises(vz.StoreError, match="in-memory fsspec store"):
        pickle.dumps(_reader(back))
    with pytest.raises(Exception) as failed:
        back.compute()  # on the cluster: distributed wraps the refusal
    chain, err = [], failed.value
    while err is not None:
        chain.append(err)
        err = err.__cause__ or err.__context__
    assert any(isinstance(e, vz.StoreError) and "in-memory fsspec" in str(e) for e in chain)
    with threads():
        np.testing.assert_array_equal(back.values, img.values)


@pytest.mark.parametrize("kw", [{"version": "0.4"}, {"version": "0.5"},
                                {"version": "0.5", "chunks": (8, 16, 16), "shards": CHUNKS}],
                         ids=["0.4", "0.5", "0.5-sharded"])
def test_to_ome_zarr(client, stored, tmp_path, kw):
    kw = {"chunks": CHUNKS, **kw}
    src = vz.open_image(stored)
    rec = Recorder()
    with rec.active():
        vz.to_ome_zarr(src, tmp_path / "ref.ome.zarr", **kw)
    with on_cluster(client, min_tasks=src.data.npartitions) as tasks:
        vz.to_ome_zarr(src, tmp_path / "out.ome.zarr", **kw)
    assert any(_wrote(t["key"]) for t in tasks)
    assert assert_same_store(tmp_path / "ref.ome.zarr", tmp_path / "out.ome.zarr") == 1
    (graph,) = rec.graphs
    check_graph(graph, n_stored_chunks(tmp_path / "out.ome.zarr"))


def test_to_ome_zarr_from_memory_and_into_a_memory_store(client, pixels):
    """A numpy image is shipped with the graph (it is the data); a MemoryStore target lives
    in this process, so it is written from here and nothing is lost on the workers."""
    store = zarr.storage.MemoryStore()
    vz.to_ome_zarr(_image(pixels), store, chunks=CHUNKS)
    np.testing.assert_array_equal(vz.open_image(store).values, pixels)


def test_convert_tiff(client, tmp_path, pixels):
    tifffile = pytest.importorskip("tifffile")
    tif = tmp_path / "stack.tif"
    data = (pixels * 60000).astype("uint16")
    tifffile.imwrite(tif, data, imagej=True, resolution=(2.0, 2.0),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})
    rec = Recorder()
    with rec.active():
        vz.convert(tif, tmp_path / "ref.ome.zarr", chunks=CHUNKS)
    vz.convert(tif, tmp_path / "out.ome.zarr", chunks=CHUNKS)
    assert_same_store(tmp_path / "ref.ome.zarr", tmp_path / "out.ome.zarr")
    out = vz.open_image(tmp_path / "out.ome.zarr")
    np.testing.assert_array_equal(out.values, data)
    assert out.vox.voxel_size == {"z": 2.0, "y": 0.5, "x": 0.5}
    write = max(rec.graphs, key=len)  # the write (verification reads are small graphs)
    check_graph(write, n_stored_chunks(tmp_path / "out.ome.zarr"))


def test_convert_writes_on_the_cluster(client, tmp_path, pixels):
    tif = _tif(tmp_path, pixels)
    with on_cluster(client, min_tasks=1) as tasks:
        vz.convert(tif, tmp_path / "out.ome.zarr", axes="zyx", voxel_size=1.0, chunks=CHUNKS)
    # the pixels are written by the workers, not only read back for verification
    assert any(_wrote(t["key"]) for t in tasks)
    np.testing.assert_array_equal(vz.open_image(tmp_path / "out.ome.zarr").values,
                                  (pixels * 1000).astype("uint16"))


def test_failed_convert_on_the_cluster_leaves_nothing(client, tmp_path, pixels):
    """A page that cannot be decoded fails a task on a worker: the error names the file and
    nothing is left beside the input (the write stopped before its folder was removed)."""
    tif = _tif(tmp_path, pixels, compression="zlib")
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffFile(tif) as t:
        page = t.pages[20]
        offset, size = page.dataoffsets[0], page.databytecounts[0]
    with open(tif, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\0" * size)
    with on_cluster(client, min_tasks=1), pytest.raises(vz.ConversionError,
                                                        match="cannot read or decode") as err:
        vz.convert(tif, tmp_path / "out.ome.zarr", axes="zyx", voxel_size=1.0, chunks=CHUNKS)
    assert err.value.path == str(tif) and err.value.field == "pixels"
    assert list(tmp_path.iterdir()) == [tif]


def test_joined_pool_follows_the_active_scheduler(client):
    from voxzarr.convert._pool import JoinedClient, current_client, joined_pool

    assert current_client() is client
    with joined_pool():
        chosen = dask.config.get("scheduler")
        assert isinstance(chosen, JoinedClient) and chosen.client is client
    with threads():  # configuration wins over the client, as in dask itself
        assert current_client() is None
        with joined_pool():
            assert dask.config.get("scheduler") == "threads"
    with dask.config.set(scheduler="sync"), joined_pool():
        assert dask.config.get("scheduler") == "sync"


def test_a_failed_write_returns_only_after_its_tasks_stopped(client, tmp_path):
    """Convert and upgrade run their graphs through ``joined_pool``: on the cluster a
    failure is raised only once no task of the graph still runs on any worker."""
    from voxzarr.convert._pool import joined_pool

    started, marker = tmp_path / "started", tmp_path / "written"

    def fail_once_started(path: str) -> None:
        deadline = time.monotonic() + 30
        while not Path(path).exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # fail only while the other task is running
        raise ValueError("simulated failure")

    def write_late(begun: str, path: str) -> int:
        Path(begun).touch()
        time.sleep(1.0)
        Path(path).write_text("late")
        return 1

    first, second = sorted(client.scheduler_info()["workers"])
    with dask.annotate(workers=[first]):
        bad = dask.delayed(fail_once_started)(str(started))
    with dask.annotate(workers=[second]):
        slow = dask.delayed(write_late)(str(started), str(marker))
    with on_cluster(client), joined_pool():
        with pytest.raises(ValueError, match="simulated failure"):
            dask.compute(bad, slow)
        # the slow task was already running: it finished before the error came out
        assert marker.read_text() == "late"


def _v04(tmp_path: Path, pixels: np.ndarray) -> Path:
    src = tmp_path / "v04.ome.zarr"
    with threads():
        vz.to_ome_zarr(_image(pixels), src, chunks=CHUNKS, version="0.4")
    return src


@pytest.mark.parametrize("reencode", [False, True], ids=["copy", "reencode"])
def test_upgrade(client, tmp_path, pixels, reencode):
    src = _v04(tmp_path, pixels)
    with threads():
        vz.upgrade(src, tmp_path / "ref.ome.zarr", shards=(32, 64, 64), reencode=reencode)
    vz.upgrade(src, tmp_path / "out.ome.zarr", shards=(32, 64, 64), reencode=reencode)
    assert_same_store(tmp_path / "ref.ome.zarr", tmp_path / "out.ome.zarr")
    np.testing.assert_array_equal(vz.open_image(tmp_path / "out.ome.zarr").values, pixels)


def test_upgrade_runs_its_tasks_on_the_cluster(client, tmp_path, pixels):
    src = _v04(tmp_path, pixels)
    with on_cluster(client, min_tasks=2):
        vz.upgrade(src, tmp_path / "out.ome.zarr", shards=(32, 64, 64))


# --------------------------------------------------------------------------- resampling
def test_ndinterp_affine(client, stored):
    data = vz.open_image(stored).data
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 0.9, 0.2], [0.0, -0.2, 0.9]])
    out = ndinterp.affine_transform(data, matrix, offset=(0.0, 4.0, -3.0), order=1,
                                    output_chunks=CHUNKS)
    with threads():
        ref = out.compute()
    with on_cluster(client, min_tasks=out.npartitions):
        got = out.compute()
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(ref, ndi.affine_transform(data.compute(scheduler="threads"),
                                                         matrix, offset=(0.0, 4.0, -3.0),
                                                         order=1), rtol=0, atol=1e-5)


def test_to_isotropic(client, stored):
    img = vz.open_image(stored)
    out = resample.to_isotropic(img, voxel_size=1.0)
    with threads():
        ref = out.compute()
    with on_cluster(client, min_tasks=out.data.npartitions):
        got = out.compute()
    xr.testing.assert_identical(got, ref)
    assert got.vox.voxel_size == {"z": 1.0, "y": 1.0, "x": 1.0}
    check_graph(out.data.__dask_graph__(), out.data.npartitions)


# --------------------------------------------------------------------------- filters, halos
def test_filter_gathering_neighbours_at_run_time(client, stored, pixels):
    img = vz.open_image(stored)
    out = filters.apply_filter(img, "gaussian", sigma=1.5, halo="never")
    with threads():
        ref = out.values
    with on_cluster(client, min_tasks=out.data.npartitions):
        got = out.values
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, ndi.gaussian_filter(pixels, 1.5))
    check_graph(out.data.__dask_graph__(), out.data.npartitions)


def test_write_halo_filter_and_map_blocks(client, tmp_path, pixels):
    ref_path, out_path = tmp_path / "ref.ome.zarr", tmp_path / "out.ome.zarr"
    for p in (ref_path, out_path):
        with threads():
            vz.to_ome_zarr(_image(pixels), p, chunks=CHUNKS)
    spec = ("gaussian", {"sigma": 1.5})
    rec = Recorder()
    with rec.active():
        halo.write_halo(None, ref_path, for_filter=spec, progress=False)
    with on_cluster(client, min_tasks=8):
        halo.write_halo(None, out_path, for_filter=spec, progress=False)
    assert_same_store(ref_path, out_path)
    check_graph(max(rec.graphs, key=len), 8)

    # the filter reads each stored halo block once, one task per chunk
    out = vz.open_image(out_path).vox.filter("gaussian", sigma=1.5, halo="require")
    n = out.data.npartitions
    with threads():
        ref = out.values
    with on_cluster(client, min_tasks=n):
        got = out.values
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, ndi.gaussian_filter(pixels, 1.5))
    per_chunk, _ = check_graph(out.data.__dask_graph__(), n)
    assert len(out.data.__dask_graph__()) <= 2 * n + 2  # ~1 task per chunk, no overlap graph

    h = halo.open_halo(out_path)
    mapped = h.map_blocks(lambda b: ndi.gaussian_filter(b, 1.5, mode="reflect"))
    with on_cluster(client, min_tasks=n):
        np.testing.assert_array_equal(mapped.values, got)
    check_graph(mapped.data.__dask_graph__(), n)


# --------------------------------------------------------------------------- pyramids
def test_build_pyramid(client, stored):
    tree = pyramid.build_pyramid(vz.open_image(stored), levels=3)
    for name in tree.children:
        level = tree[name].image
        with threads():
            ref = level.compute()
        with on_cluster(client):
            got = level.compute()
        xr.testing.assert_identical(got, ref)
        check_graph(level.data.__dask_graph__(), level.data.npartitions)


def test_to_ome_zarr_with_pyramid(client, stored, tmp_path):
    src = vz.open_image(stored)
    kw = {"chunks": CHUNKS, "pyramid": {"levels": 3}}
    rec = Recorder()
    with rec.active():
        vz.to_ome_zarr(src, tmp_path / "ref.ome.zarr", **kw)
    with on_cluster(client, min_tasks=src.data.npartitions + 2):
        vz.to_ome_zarr(src, tmp_path / "out.ome.zarr", **kw)
    assert assert_same_store(tmp_path / "ref.ome.zarr", tmp_path / "out.ome.zarr") == 3
    tree = vz.open_multiscale(tmp_path / "out.ome.zarr")
    assert list(tree.children) == ["0", "1", "2"]
    chunks_per_level = [int(np.prod(a.cdata_shape)) for _, a in sorted(
        zarr.open_group(tmp_path / "out.ome.zarr", mode="r").arrays())]
    # fused: one graph writes every level, each reduced from the level below in memory
    assert len(rec.graphs) == 1
    check_graph(rec.graphs[0], sum(chunks_per_level))


# --------------------------------------------------------------------------- series
def _movie(tmp_path: Path) -> Path:
    arr = np.random.default_rng(3).integers(0, 3000, (12, 4, 32, 24)).astype("uint16")
    path = tmp_path / "movie.ome.zarr"
    with threads():
        vz.to_ome_zarr(vz.from_array(arr, "tzyx", voxel_size={"t": 0.5, "z": 2.0, "y": 0.5,
                                                                 "x": 0.5}),
                       path, chunks={"t": 1, "z": 4, "y": 32, "x": 24})
    return path


def test_series_round_trip(client, tmp_path):
    movie = vz.open_image(_movie(tmp_path))
    with threads():
        series.to_series(movie, tmp_path / "ref.series.zarr", memory="64MB",
                         progress=False)
    series.to_series(movie, tmp_path / "out.series.zarr", memory="64MB", progress=False)
    # "voxzarr" records the source location, which differs between the two runs
    assert_same_store(tmp_path / "ref.series.zarr", tmp_path / "out.series.zarr",
                      ignore_attrs=("voxzarr",))
    ser = series.open_series(tmp_path / "out.series.zarr")
    with on_cluster(client, min_tasks=1):
        np.testing.assert_array_equal(ser.values, movie.values)
    with threads():
        series.to_images(ser, tmp_path / "ref-back.ome.zarr", progress=False)
    series.to_images(ser, tmp_path / "out-back.ome.zarr", progress=False)
    assert_same_store(tmp_path / "ref-back.ome.zarr", tmp_path / "out-back.ome.zarr",
                      ignore_attrs=("voxzarr",))


def _series_tasks(tasks: list) -> list:
    return [t for t in tasks if "voxzarr-" in str(t["key"])]


def _n_tasks(series: Any, img: xr.DataArray, direction: str, **kw: Any) -> int:
    from voxzarr.series.executor import reader_for

    make = series.plan_to_series if direction == "to_series" else series.plan_to_images
    plan = make(img.dims, img.shape, 2, budget=series.parse_memory(kw.pop("memory")),
                source_chunks=reader_for(img.data, 1).chunks, threads=1, **kw)
    return sum(p.n_tasks for p in plan.phases)


# (12, 4, 32, 24) uint16 in shards (12, 2, 16, 16), one thread: direct = 4 tasks (3 back),
# staged = 3 + 2 (2 + 2 back)
@pytest.mark.parametrize("staging,memory", [(False, "96KB"), (True, "128KB")])
def test_to_series_runs_its_tasks_on_the_cluster(client, tmp_path, staging, memory):
    """Both directions, direct and staged, into shards: the same stores as the local
    scheduler, and every transpose task ran on a worker process."""
    movie = vz.open_image(_movie(tmp_path))
    kw = {"memory": memory, "block": (2, 8, 8), "shards": (2, 16, 16), "staging": staging}
    n = _n_tasks(series, movie, "to_series", **kw)
    assert n >= 4
    with threads():
        series.to_series(movie, tmp_path / "ref.series.zarr", threads=1, progress=False,
                         **kw)
    with on_cluster(client, min_tasks=n) as tasks:
        series.to_series(movie, tmp_path / "out.series.zarr", threads=1, progress=False,
                         **kw)
    assert len(_series_tasks(tasks)) == n  # each task once, all of them on the workers
    assert series.series_info(tmp_path / "out.series.zarr")["shards"] == [12, 2, 16, 16]
    assert assert_same_store(tmp_path / "ref.series.zarr", tmp_path / "out.series.zarr",
                             ignore_attrs=("voxzarr",)) == 1
    ser = series.open_series(tmp_path / "out.series.zarr")
    back = {"memory": memory, "staging": staging}
    n = _n_tasks(series, ser, "to_images", **back)
    with threads():
        np.testing.assert_array_equal(ser.values, movie.values)
        series.to_images(ser, tmp_path / "ref-back.ome.zarr", threads=1, progress=False,
                         **back)
    with on_cluster(client, min_tasks=n) as tasks:
        series.to_images(ser, tmp_path / "out-back.ome.zarr", threads=1, progress=False,
                         **back)
    assert len(_series_tasks(tasks)) == n
    assert assert_same_store(tmp_path / "ref-back.ome.zarr", tmp_path / "out-back.ome.zarr",
                             ignore_attrs=("voxzarr",)) == 1


def test_failed_series_task_on_the_cluster_resumes(client, tmp_path):
    """A task failing on a worker fails the conversion clearly; the store never reads as
    complete, finished tasks are recorded, and running it again does only the rest."""
    arr = np.random.default_rng(5).integers(0, 3000, (12, 4, 32, 24)).astype("uint16")
    src = tmp_path / "movie.ome.zarr"
    with threads():
        vz.to_ome_zarr(vz.from_array(arr, "tzyx", voxel_size=1.0), src,
                       chunks={"t": 1, "z": 2, "y": 16, "x": 24})
    movie = vz.open_image(src)
    # 72KB, one thread: 8 tasks of one shard each; only the last two read source chunk
    # (5, 1, 1, 0)
    kw = {"memory": "72KB", "block": (2, 8, 8), "shards": (2, 16, 16), "staging": False}
    n = _n_tasks(series, movie, "to_series", **kw)
    assert n == 8
    bad = src / "0" / "c" / "5" / "1" / "1" / "0"
    good = bad.read_bytes()
    bad.write_bytes(b"not a blosc frame")
    out = tmp_path / "out.series.zarr"
    with distributed.get_task_stream(client) as failed:
        with pytest.raises(vz.ChunkError, match="cannot read or decode"):
            series.to_series(movie, out, threads=1, progress=False, **kw)
    # a task of that run still in flight may report after it: tell the runs apart by token
    first_run = {str(t["key"]).split("-")[2] for t in _series_tasks(failed.data)}
    assert not out.exists()
    state = zarr.open_group(tmp_path / ".out.series.zarr.voxzarr-partial",
                            mode="r").attrs["voxzarr"]
    assert state["complete"] is False
    done = state["progress"]["next"]
    assert state["progress"]["phase"] == 0 and 0 < done < n
    with pytest.raises(vz.StoreError, match="did not finish"):
        series.open_series(out)
    bad.write_bytes(good)
    with on_cluster(client) as tasks:
        series.to_series(movie, out, threads=1, progress=False, **kw)
    resumed = [t for t in _series_tasks(tasks) if str(t["key"]).split("-")[2] not in first_run]
    assert len(resumed) == n - done  # resumed, not started again
    np.testing.assert_array_equal(series.open_series(out).values, arr)


def test_series_task_ships_no_data(client, tmp_path):
    """A task carries the zarr arrays (metadata, store path) and a region, never pixels;
    a source held in this process's memory is converted here, not shipped."""
    from voxzarr.series.executor import copy_region, reader_for

    movie = vz.open_image(_movie(tmp_path))
    reader = reader_for(movie.data, 1)
    region = (slice(0, 12), slice(0, 4), slice(0, 16), slice(0, 24))
    target = zarr.create_array(tmp_path / "t.zarr", shape=movie.shape, dtype="uint16",
                               chunks=(12, 2, 8, 8), fill_value=0)
    task = reader.for_task(region)
    assert task is not None
    assert len(cloudpickle.dumps((copy_region, *task, target, region, 1))) < TASK_BYTES
    in_memory = movie.compute()
    assert reader_for(in_memory.data, 1).for_task(region) is None
    with distributed.get_task_stream(client) as ts:
        series.to_series(in_memory, tmp_path / "mem.series.zarr", memory="96KB",
                         threads=1, progress=False)
    assert not _series_tasks(ts.data)
    np.testing.assert_array_equal(series.open_series(tmp_path / "mem.series.zarr").values,
                                  in_memory.values)


# --------------------------------------------------------------------------- object storage
@pytest.fixture
def s3_on_workers(client, s3: S3) -> Iterator[S3]:
    """The workers get the credentials the same way: from their environment."""
    creds = dict(CREDENTIALS)
    client.run(lambda: os.environ.update(creds))
    yield s3
    client.run(lambda: [os.environ.pop(k, None) for k in creds])


def test_s3_write_and_read_on_the_cluster(client, s3_on_workers, stored, pixels):
    s3 = s3_on_workers
    url = s3.url()
    src = vz.open_image(stored)
    with on_cluster(client, min_tasks=src.data.npartitions):
        vz.to_ome_zarr(src, url, chunks=CHUNKS, storage_options=s3.storage_options)
    back = vz.open_image(url, storage_options=s3.storage_options)
    blob = cloudpickle.dumps(ensure_dict(back.data.__dask_graph__()))
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"].encode() not in blob
    with on_cluster(client, min_tasks=back.data.npartitions):
        np.testing.assert_array_equal(back.values, pixels)
    check_graph(back.data.__dask_graph__(), back.data.npartitions)


def test_convert_and_upgrade_into_s3_on_the_cluster(client, s3_on_workers, tmp_path, pixels):
    s3 = s3_on_workers
    url = s3.url()
    with on_cluster(client) as tasks:
        vz.convert(_tif(tmp_path, pixels), url, axes="zyx", voxel_size=1.0, chunks=CHUNKS,
                   storage_options=s3.storage_options)
    assert any(_wrote(t["key"]) for t in tasks)
    back = vz.open_image(url, storage_options=s3.storage_options)
    np.testing.assert_array_equal(back.values, (pixels * 1000).astype("uint16"))
    up = s3.url()
    src = _v04(tmp_path, pixels)
    with on_cluster(client, min_tasks=2):
        vz.upgrade(src, up, shards=(32, 64, 64), storage_options=s3.storage_options)
    with threads():
        vz.upgrade(src, tmp_path / "ref.ome.zarr", shards=(32, 64, 64))
    remote = zarr.storage.FsspecStore.from_url(up, storage_options=s3.storage_options,
                                               read_only=True)
    assert assert_same_store(tmp_path / "ref.ome.zarr", remote) == 1


# --------------------------------------------------------------------------- command line
def _tif(tmp_path: Path, pixels: np.ndarray, **kwargs: Any) -> Path:
    tifffile = pytest.importorskip("tifffile")
    tif = tmp_path / "stack.tif"
    tifffile.imwrite(tif, (pixels * 1000).astype("uint16"), **kwargs)
    return tif


def test_cli_scheduler_address(client, stored, tmp_path, pixels, capsys):
    out = tmp_path / "out.ome.zarr"
    with on_cluster(client) as tasks:
        rc = main(["--scheduler", client.scheduler.address, "filter", str(stored), str(out),
                   "gaussian", "--param", "sigma=1", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert any(_wrote(t["key"]) for t in tasks)
    np.testing.assert_array_equal(vz.open_image(out).values, ndi.gaussian_filter(pixels, 1.0))
    # the option also works after the subcommand
    rc = main(["info", str(out), "--json", "--scheduler", client.scheduler.address])
    assert rc == 0 and '"voxel_size"' in capsys.readouterr().out


def test_cli_local_workers(stored, tmp_path, pixels, capsys, monkeypatch):
    import voxzarr._cluster as vc

    seen: dict[str, Any] = {}
    original = vc.cluster

    @contextmanager
    def watched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with original(*args, **kwargs) as c:
            with distributed.get_task_stream(client=c) as ts:
                yield c
            seen["workers"] = len(c.scheduler_info()["workers"])
            seen["wrote"] = any(_wrote(t["key"]) for t in ts.data)

    monkeypatch.setattr(vc, "cluster", watched)
    out = tmp_path / "out.ome.zarr"
    rc = main(["--workers", "2", "filter", str(stored), str(out), "gaussian", "--param",
               "sigma=1", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    assert seen == {"workers": 2, "wrote": True}  # its own cluster did the work
    np.testing.assert_array_equal(vz.open_image(out).values, ndi.gaussian_filter(pixels, 1.0))


def test_cli_cluster_errors(tmp_path, capsys):
    assert main(["--workers", "0", "info", str(tmp_path)]) == 1
    assert "--workers: needs at least one worker" in capsys.readouterr().err
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["--scheduler", "tcp://127.0.0.1:9", "info", str(tmp_path)]) == 1
    assert "cannot reach the dask scheduler" in capsys.readouterr().err
