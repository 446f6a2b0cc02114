"""Soak test: concurrent region writes and halo reads on one OME-Zarr image.

Writer threads (and two writer processes) write random regions through
:func:`voxzarr.halo.write_region` while reader threads read halo blocks
(:meth:`HaloArray.block`), run :meth:`HaloArray.map_blocks` and ``img.vox.filter`` through
the stored halo. Each writer owns one x-stripe of the image, so writes of different writers
never overlap (the final image is well defined) while their halo blocks do (that is where
races would show).

Invariants checked:

- every ``write_region`` gets its own generation and the generations are ``1 .. N`` (the
  increment is atomic across threads and processes);
- no data is lost: the final image equals a numpy reference with every write applied;
- every halo read is fresh or refused: a read from a halo opened at generation ``g`` and
  finished when the image was at ``g_end`` equals, block by block, the result computed
  from the reference image at some generation in ``[g, g_end]``; otherwise it raised
  :class:`~voxzarr.errors.StaleHaloError`;
- at the end the halo is fresh and equals the halo of the final image.

The run is bounded in time (``SOAK_SECONDS`` of concurrent work, then the check).
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

import voxzarr as vz
from voxzarr.errors import StaleHaloError
from voxzarr.halo import halo_status, open_halo, write_region

SHAPE = (16, 40, 48)
CHUNKS = (8, 16, 16)
SIGMA = 0.5  # gaussian radius int(4 * 0.5 + 0.5) = 2 = the stored depth
DEPTH = 2
N_THREAD_WRITERS = 3
N_PROC_WRITERS = 2
STRIPE = SHAPE[2] // (N_THREAD_WRITERS + N_PROC_WRITERS)  # x-stripe owned by each writer
SOAK_SECONDS = 10.0

Write = tuple[int, tuple[tuple[int, int], ...], int]  # (generation, region bounds, seed)


def _region(rng: np.random.Generator, owner: int) -> tuple[tuple[int, int], ...]:
    """A random box inside writer ``owner``'s x-stripe."""
    out = []
    for n, (lo, hi) in zip(SHAPE, [(0, SHAPE[0]), (0, SHAPE[1]),
                                   (owner * STRIPE, (owner + 1) * STRIPE)], strict=True):
        del n
        a = int(rng.integers(lo, hi))
        b = int(rng.integers(a + 1, min(hi, a + 12) + 1))
        out.append((a, b))
    return tuple(out)


def _values(bounds: tuple[tuple[int, int], ...], seed: int) -> np.ndarray:
    shape = tuple(b - a for a, b in bounds)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _write_loop(path: str, owner: int, deadline: float) -> list[Write]:
    """Write random regions of one stripe until ``deadline``; what was written, in order."""
    rng = np.random.default_rng(1000 + owner)
    done: list[Write] = []
    while time.time() < deadline:
        bounds = _region(rng, owner)
        seed = int(rng.integers(2**31))
        report = write_region(path, tuple(slice(a, b) for a, b in bounds),
                              _values(bounds, seed))
        done.append((report.generation, bounds, seed))
    return done


def _proc_writer(path: str, owner: int, deadline: float, out: mp.Queue) -> None:
    """Writer process body (module level so that ``spawn`` can import it)."""
    try:
        out.put(("ok", owner, _write_loop(path, owner, deadline)))
    except BaseException as err:  # report, never hang the parent
        out.put(("error", owner, repr(err)))


def _halo_block(img: np.ndarray, index: tuple[int, ...]) -> np.ndarray:
    """The valid part of halo block ``index`` computed from the whole image (spec/halo.md)."""
    sl = []
    for k, c, n in zip(index, CHUNKS, SHAPE, strict=True):
        d = DEPTH  # every axis is spatial here
        sl.append(slice(max(0, k * c - d), min(n, min((k + 1) * c, n) + d)))
    return img[tuple(sl)]


def _smooth(block: np.ndarray) -> np.ndarray:
    return ndi.gaussian_filter(block, SIGMA, mode="nearest")


def _image_generation(path: str) -> int:
    return int(halo_status(path)[0]["image_generation"])


class _History:
    """The reference image at every generation, rebuilt from the recorded writes."""

    def __init__(self, start: np.ndarray, writes: list[Write]):
        gens = [g for g, _, _ in writes]
        assert sorted(gens) == list(range(1, len(gens) + 1)), (
            "each write_region must get its own generation, 1..N: "
            f"{sorted(gens)[:20]}...")
        self.states = [start.copy()]
        for _, bounds, seed in sorted(writes):
            nxt = self.states[-1].copy()
            nxt[tuple(slice(a, b) for a, b in bounds)] = _values(bounds, seed)
            self.states.append(nxt)
        self._smoothed: dict[int, np.ndarray] = {}

    def smoothed(self, g: int) -> np.ndarray:
        if g not in self._smoothed:
            self._smoothed[g] = _smooth(self.states[g])
        return self._smoothed[g]


def _core(index: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(k * c, min((k + 1) * c, n)) for k, c, n in zip(index, CHUNKS, SHAPE,
                                                                      strict=True))


def _blocks() -> list[tuple[int, ...]]:
    return [tuple(int(i) for i in idx)
            for idx in np.ndindex(*(-(-n // c) for n, c in zip(SHAPE, CHUNKS, strict=True)))]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_concurrent_region_writes_and_halo_reads(tmp_path: Path) -> None:
    path = str(tmp_path / "soak.ome.zarr")
    start = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    img = vz.from_array(start, "zyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})
    vz.to_ome_zarr(img, path, chunks=CHUNKS)
    vz.open_image(path).vox.to_halo(path, for_filter=("gaussian", {"sigma": SIGMA}))
    assert open_halo(path).meta.depth == (DEPTH,) * 3

    deadline = time.time() + SOAK_SECONDS
    ctx = mp.get_context("spawn")  # never fork a process that runs threads
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_proc_writer,
                         args=(path, N_THREAD_WRITERS + i, deadline + 2.0, queue))
             for i in range(N_PROC_WRITERS)]
    for p in procs:
        p.start()

    writes: list[Write] = []
    errors: list[BaseException] = []
    # (kind, g_start, g_end, payload): what a reader got, checked after the run
    reads: list[tuple[str, int, int, object]] = []
    refused = {"n": 0}
    lock = threading.Lock()

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as err:
                with lock:
                    errors.append(err)
        return run

    def thread_writer(owner: int) -> Callable[[], None]:
        def body() -> None:
            done = _write_loop(path, owner, deadline)
            with lock:
                writes.extend(done)
        return body

    def reader(kind: str, seed: int) -> Callable[[], None]:
        def body() -> None:
            rng = np.random.default_rng(seed)
            blocks = _blocks()
            while time.time() < deadline:
                try:
                    if kind == "filter":
                        opened = vz.open_image(path)
                        g = _image_generation(path)
                        out = opened.vox.filter("gaussian", sigma=SIGMA, mode="nearest",
                                                halo="require").values
                        payload: object = out
                    else:
                        h = open_halo(path)
                        g = h.generation
                        if kind == "block":
                            idx = blocks[int(rng.integers(len(blocks)))]
                            payload = (idx, h.block(idx).data.copy())
                        else:
                            payload = h.map_blocks(_smooth).values
                except StaleHaloError:
                    with lock:
                        refused["n"] += 1
                    continue
                g_end = _image_generation(path)
                with lock:
                    reads.append((kind, g, g_end, payload))
        return body

    threads = [threading.Thread(target=guarded(thread_writer(i))) for i in
               range(N_THREAD_WRITERS)]
    threads += [threading.Thread(target=guarded(reader(kind, s))) for s, kind in
                enumerate(["block", "block", "map", "filter"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SOAK_SECONDS + 60)
    for _ in procs:
        status, owner, got = queue.get(timeout=60)
        assert status == "ok", f"writer process {owner} failed: {got}"
        writes.extend(got)  # type: ignore[arg-type]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    # every write got its own generation; nothing written was lost
    hist = _History(start, writes)
    final = hist.states[-1]
    assert len(writes) >= 10, "the soak ran too few writes to mean anything"
    assert _image_generation(path) == len(writes)
    np.testing.assert_array_equal(vz.open_image(path).values, final)

    # every read that was let through was fresh at one generation, block by block
    assert reads, "no read got through"
    for kind, g, g_end, payload in reads:
        assert g <= g_end
        gens = range(g, g_end + 1)
        if kind == "block":
            idx, data = payload  # type: ignore[misc]
            assert any(np.array_equal(data, _halo_block(hist.states[k], idx)) for k in gens), (
                f"halo block {idx} read at generations {g}..{g_end} matches none of them")
        else:
            for idx in _blocks():
                core = _core(idx)
                got = payload[core]  # type: ignore[index]
                assert any(np.array_equal(got, hist.smoothed(k)[core]) for k in gens), (
                    f"{kind} block {idx} at generations {g}..{g_end} matches none of them")

    # the halo stayed fresh through every concurrent write and holds the final image
    h = open_halo(path)
    assert h.generation == len(writes)
    for idx in _blocks():
        np.testing.assert_array_equal(h.block(idx).data, _halo_block(final, idx))
    np.testing.assert_array_equal(h.core.values, final)
    print(f"soak: {len(writes)} writes, {len(reads)} reads checked, {refused['n']} refused")


def test_earlier_open_image_never_uses_a_halo_gone_stale(tmp_path: Path) -> None:
    """Regression: the halo check read the generation cached when the image was opened.

    An image opened before its pixels changed (written by other means, then
    ``bump_generation``) passed that old generation to the halo check, so
    ``filter(..., halo="require")`` used the stale halo silently.
    """
    import zarr

    from voxzarr.halo import bump_generation

    path = str(tmp_path / "img.ome.zarr")
    start = np.random.default_rng(1).random(SHAPE, dtype=np.float32)
    vz.to_ome_zarr(vz.from_array(start, "zyx"), path, chunks=CHUNKS)
    vz.open_image(path).vox.to_halo(path, for_filter=("gaussian", {"sigma": SIGMA}))
    opened = vz.open_image(path)
    zarr.open_array(f"{path}/0", mode="r+")[:] = 7.0
    bump_generation(path)
    with pytest.raises(StaleHaloError):
        opened.vox.filter("gaussian", sigma=SIGMA, mode="nearest", halo="require")
    with pytest.warns(UserWarning, match="stale halo"):
        out = opened.vox.filter("gaussian", sigma=SIGMA, mode="nearest").values
    np.testing.assert_array_equal(out, np.full(SHAPE, 7.0, dtype=np.float32))
