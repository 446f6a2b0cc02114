"""A worker process killed in the middle of a distributed write.

Each test starts its own ``LocalCluster(processes=True, n_workers=2)`` (a killed worker is
restarted by its nanny, so a shared cluster would carry the fault into other tests), slows
every task down a little with a worker plugin that also drops a marker file naming the
worker's pid when a task starts, and SIGKILLs the worker that started the latest task once
a few tasks have started: a kill in the middle of the job, of a worker running a task.

- With dask's default ``allowed-failures`` the scheduler reruns the lost tasks: the job
  completes and the output equals the one written on the threaded scheduler.
- With ``allowed-failures=0`` the job fails with ``KilledWorker``: the output must not open
  as an image (``open_image`` raises a :class:`~voxzarr.errors.VoxzarrError`), for
  ``add_levels`` the image must still open as it was, and a retry without ``overwrite``
  must work and give the right result.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import zarr

import voxzarr as vz
from voxzarr.errors import VoxzarrError

distributed = pytest.importorskip("distributed")

SHAPE = (32, 96, 128)
CHUNKS = (16, 32, 32)  # 24 chunks in level 0
TASK_DELAY = 0.15  # seconds added to every task, so the job lasts a few seconds
KILL_AFTER = 4  # tasks started before the kill


def _slow_plugin(markers: str, delay: float) -> Any:
    """A worker plugin: marker file ``<pid>-<n>`` and a short sleep when a task starts."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class Slow(WorkerPlugin):
        name = "voxzarr-test-slow"

        def __init__(self) -> None:
            self.n = 0

        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            if finish == "executing":
                self.n += 1
                Path(markers, f"{os.getpid()}-{self.n}").touch()
                time.sleep(delay)

    return Slow()


@contextmanager
def cluster(tmp_path: Path, allowed_failures: int | None = None) -> Iterator[Any]:
    """A fresh two-process cluster whose tasks are slowed down and leave start markers."""
    markers = tmp_path / "markers"
    markers.mkdir()
    conf = {} if allowed_failures is None else {
        "distributed.scheduler.allowed-failures": allowed_failures}
    with dask.config.set(conf), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True,
            dashboard_address=None) as lc, distributed.Client(lc) as client:
        client.register_plugin(_slow_plugin(str(markers), TASK_DELAY))
        client.markers = markers  # type: ignore[attr-defined]
        yield client


@contextmanager
def threads() -> Iterator[None]:
    """The local threaded scheduler, for the reference results."""
    with dask.config.set(scheduler="threads"):
        yield


def run_and_kill(client: Any, job: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """Run ``job`` in a thread; SIGKILL the worker that started the latest task once
    ``KILL_AFTER`` tasks have started. Returns the job's exception (or None) and the pid."""
    markers: Path = client.markers
    for f in markers.iterdir():  # count only this job's tasks
        f.unlink()
    pids = set(client.run(os.getpid).values())
    outcome: dict[str, BaseException | None] = {"error": None}

    def target() -> None:
        try:
            job()
        except BaseException as err:
            outcome["error"] = err

    worker = threading.Thread(target=target)
    worker.start()
    deadline = time.monotonic() + 60
    killed = 0
    while time.monotonic() < deadline and worker.is_alive():
        started = sorted(markers.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        if len(started) >= KILL_AFTER:
            killed = int(started[-1].name.split("-")[0])
            assert killed in pids
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.01)
    worker.join(timeout=90)
    assert not worker.is_alive(), "the job hung after the kill"
    assert killed, "the job finished before the kill: make it longer"
    return outcome["error"], killed


def _settle(client: Any) -> None:
    """Wait until no task runs on the cluster any more (a failed job's leftovers)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(client.processing().values()):
        time.sleep(0.05)
    time.sleep(2 * TASK_DELAY)


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".partial", ".old")))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    pixels = np.random.default_rng(5).random(SHAPE).astype("float32")
    path = tmp_path_factory.mktemp("faults") / "src.ome.zarr"
    with threads():
        vz.to_ome_zarr(vz.from_array(pixels, "zyx", voxel_size={"z": 2.0, "y": 0.5,
                                                                "x": 0.5}),
                       path, chunks=CHUNKS)
    return path


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory) -> Path:
    """The pyramid written on the threaded scheduler."""
    path = tmp_path_factory.mktemp("ref") / "ref.ome.zarr"
    with threads():
        vz.to_ome_zarr(vz.open_image(source), path, chunks=CHUNKS, pyramid={"levels": 3})
    return path


def assert_same_levels(a: Path, b: Path) -> None:
    ta, tb = vz.open_multiscale(a), vz.open_multiscale(b)
    assert list(ta.children) == list(tb.children) == ["0", "1", "2"]
    for name in ta.children:
        xa, xb = vz.open_image(a, level=int(name)), vz.open_image(b, level=int(name))
        with threads():
            np.testing.assert_array_equal(xa.values, xb.values, err_msg=name)
        for d in xa.dims:
            np.testing.assert_array_equal(xa[d].values, xb[d].values)


# --------------------------------------------------------------------------- to_ome_zarr
def test_pyramid_write_survives_a_killed_worker(tmp_path, source, reference):
    out = tmp_path / "out.ome.zarr"
    with cluster(tmp_path) as client:
        err, _ = run_and_kill(client, lambda: vz.to_ome_zarr(
            vz.open_image(source), out, chunks=CHUNKS, pyramid={"levels": 3}))
        assert err is None, f"dask should have rerun the lost tasks: {err!r}"
    assert_same_levels(out, reference)
    assert _partials(tmp_path) == []


def test_pyramid_write_failing_on_a_killed_worker_leaves_nothing(tmp_path, source, reference):
    out = tmp_path / "out.ome.zarr"
    with cluster(tmp_path, allowed_failures=0) as client:
        err, _ = run_and_kill(client, lambda: vz.to_ome_zarr(
            vz.open_image(source), out, chunks=CHUNKS, pyramid={"levels": 3}))
        assert isinstance(err, distributed.KilledWorker), repr(err)
        _settle(client)  # the other worker's tasks have finished writing by now
        with pytest.raises(VoxzarrError):
            vz.open_image(out)
        with pytest.raises(VoxzarrError):
            vz.open_multiscale(out)
        assert not out.exists()
        assert _partials(tmp_path) == [], "a failed write left a partial copy behind"
        # a retry needs no overwrite=True and writes the right pyramid
        vz.to_ome_zarr(vz.open_image(source), out, chunks=CHUNKS, pyramid={"levels": 3})
    assert_same_levels(out, reference)


# --------------------------------------------------------------------------- add_levels
def _copy(source: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(source, dest)
    return dest


def test_add_levels_failing_on_a_killed_worker_keeps_the_image(tmp_path, source, reference):
    from voxzarr.pyramid import add_levels

    img = _copy(source, tmp_path / "img.ome.zarr")
    with cluster(tmp_path, allowed_failures=0) as client:
        err, _ = run_and_kill(client, lambda: add_levels(img, levels=3))
        assert isinstance(err, distributed.KilledWorker), repr(err)
        _settle(client)
        # levels are listed only once written: the image is still the one-level original
        tree = vz.open_multiscale(img)
        assert list(tree.children) == ["0"]
        with threads():
            np.testing.assert_array_equal(vz.open_image(img).values,
                                          vz.open_image(source).values)
        # the unlisted half-written arrays do not block a retry without overwrite=True
        add_levels(img, levels=3)
    assert_same_levels(img, reference)
    assert zarr.open_group(img, mode="r")["1"].shape == zarr.open_group(
        reference, mode="r")["1"].shape


def test_add_levels_survives_a_killed_worker(tmp_path, source, reference):
    from voxzarr.pyramid import add_levels

    img = _copy(source, tmp_path / "img.ome.zarr")
    with cluster(tmp_path) as client:
        err, _ = run_and_kill(client, lambda: add_levels(img, levels=3))
        assert err is None, f"dask should have rerun the lost tasks: {err!r}"
    assert_same_levels(img, reference)
