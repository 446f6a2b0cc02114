"""Stored halo vs run-time overlap: full-pass Gaussian, one-chunk ROI on a slow store, storage.

Side by side in one run, on the same data and chunks (uint16, Blosc zstd-3 + shuffle):

1. Full pass, Gaussian sigma 2 and 5: voxzarr from the halo store (one read per chunk) vs
   dask-image ``gaussian_filter`` (``map_overlap``) on the plain store, and voxzarr's own
   run-time overlap; each to memory. Wall time on the threaded scheduler (runs interleaved,
   best of ``--repeat``) and CPU seconds on the synchronous scheduler (``process_time``:
   what each tool costs, robust when other jobs share the machine). Results are checked
   equal to each other.
2. One interior chunk (region of interest) through a store that sleeps 20 ms per read
   (``zarr.testing.store.LatencyStore``): reads, bytes and seconds for voxzarr's one stored
   block vs dask-image's neighbour reads; input-only (reads and assembly) and filtered.
   Each is run ``--roi-repeat`` times, interleaved between the tools, on a fresh store
   object; the best time is the figure (the first run is shown beside it).
3. Storage overhead ``prod((c + 2h) / c) - 1`` for chunk 64/128/256 and depth 4/8/20, and the
   measured compressed overhead of the halo built here.

Usage::

    python benchmarks/halo.py [--size 384] [--chunk 128] [--sigmas 2,5] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import scipy.ndimage as ndi
import zarr
import zarr.storage
from zarr.testing.store import LatencyStore

sys.path.insert(0, str(Path(__file__).parent))
from _util import table  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr.filters import filter_radius  # noqa: E402
from voxzarr.halo import storage_overhead, write_halo  # noqa: E402


class CountingStore(zarr.storage.WrapperStore):
    """Counts reads and the bytes they return (shared counters across copies)."""

    def __init__(self, store, stats=None):
        super().__init__(store)
        self.stats = {"reads": 0, "bytes": 0} if stats is None else stats

    def _with_store(self, store):
        return type(self)(store, self.stats)

    async def get(self, key, prototype, byte_range=None):
        buf = await self._store.get(key, prototype, byte_range)
        if "/c/" in key:  # chunk reads only, not metadata
            self.stats["reads"] += 1
            self.stats["bytes"] += 0 if buf is None else len(buf)
        return buf


def make_volume(n: int, seed: int = 0) -> np.ndarray:
    """Camera-like 12-bit data: smooth structure plus Poisson-ish noise."""
    rng = np.random.default_rng(seed)
    small = ndi.zoom(rng.random((n // 16,) * 3, dtype=np.float32), 16, order=1)
    noise = rng.normal(0, 40, (n,) * 3).astype(np.float32)
    return np.clip(small * 3000 + 200 + noise, 0, 4095).astype(np.uint16)


def best(fn, repeat: int, clock=time.perf_counter) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    return min(times), out


def cpu_seconds(fn, repeat: int) -> float:
    """CPU time of ``fn`` on dask's synchronous scheduler (robust on a shared machine)."""
    with dask.config.set(scheduler="synchronous"):
        return best(fn, repeat, time.process_time)[0]


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def roi_once(tool: str, what: str, s: float, plain: Path, haloed: Path, k: int,
             latency: float) -> tuple[float, int, float]:
    """One region-of-interest computation on a fresh slow store: seconds, reads, MB read."""
    import dask_image.ndfilters as dif

    stats = {"reads": 0, "bytes": 0}
    root = plain if tool.startswith("dask") else haloed
    store = CountingStore(LatencyStore(zarr.storage.LocalStore(root, read_only=True),
                                       get_latency=latency), stats)
    if tool.startswith("dask"):
        arr = da.from_zarr(zarr.open_array(store, path="0", mode="r"))
        r = filter_radius("gaussian", "zyx", sigma=s)[0]
        if what == "input":
            job = da.overlap.overlap(arr, depth=r, boundary="none").blocks[k, k, k]
        else:
            job = dif.gaussian_filter(arr, s).blocks[k, k, k]
    else:
        img = vz.open_image(store)
        if what == "input":
            h = vz.open_halo(store)
            job = h.map_blocks(lambda b: b, dtype=img.dtype).data.blocks[k, k, k]
        else:
            job = img.vox.filter("gaussian", sigma=s, halo="require").data.blocks[k, k, k]
    stats.update(reads=0, bytes=0)
    t0 = time.perf_counter()
    job.compute()
    return time.perf_counter() - t0, stats["reads"], stats["bytes"] / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--sigmas", default="2,5")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--latency", type=float, default=0.02, help="seconds per read")
    ap.add_argument("--roi-repeat", type=int, default=5,
                    help="region-of-interest runs per tool (best kept; the first shown too)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    import dask_image.ndfilters as dif

    sigmas = [float(s) for s in args.sigmas.split(",")]
    n, c = args.size, args.chunk
    tmp = Path(tempfile.mkdtemp(prefix="voxzarr-halo-bench-"))
    plain = tmp / "plain.ome.zarr"
    vol = make_volume(n)
    vz.from_array(vol, "zyx").vox.to_ome_zarr(plain, chunks=(c,) * 3, progress=False)
    # one halo store per sigma, built for that filter (depth = its exact radius)
    haloed, depth, build = {}, {}, {}
    for s in sigmas:
        haloed[s] = tmp / f"halo-sigma{s:g}.ome.zarr"
        vz.from_array(vol, "zyx").vox.to_ome_zarr(haloed[s], chunks=(c,) * 3,
                                                  progress=False)
        t0 = time.perf_counter()
        write_halo(None, haloed[s], for_filter=("gaussian", {"sigma": s}),
                   progress=False)
        build[s] = time.perf_counter() - t0
        depth[s] = vz.open_halo(haloed[s]).depth["x"]
    results: dict[str, object] = {"size": n, "chunk": c, "depth": depth,
                                  "halo_build_s": build, "threads": dask.system.CPU_COUNT}

    # 1. full pass ----------------------------------------------------------------
    rows = []
    for s in sigmas:
        src = da.from_zarr(zarr.open_array(plain / "0", mode="r"))
        jobs = {
            "voxzarr halo": lambda s=s: vz.open_image(haloed[s]).vox.filter(
                "gaussian", sigma=s, halo="require").data.compute(),
            "dask-image": lambda s=s, src=src: dif.gaussian_filter(src, s).compute(),
            "voxzarr run-time overlap": lambda s=s: vz.open_image(plain).vox.filter(
                "gaussian", sigma=s, halo="never").data.compute(),
        }
        outs, wall, cpu = {}, {}, {}
        for _ in range(args.repeat):  # interleaved, so load changes hit every tool alike
            for name, job in jobs.items():
                t, outs[name] = best(job, 1)
                wall[name] = min(wall.get(name, t), t)
        for name, job in jobs.items():
            cpu[name] = cpu_seconds(job, args.repeat)
        ref = outs["voxzarr halo"]
        for name in jobs:
            rows.append({"sigma": s, "tool": name, "wall_s": wall[name], "cpu_s": cpu[name],
                         "wall ratio": wall["dask-image"] / wall[name],
                         "cpu ratio": cpu["dask-image"] / cpu[name],
                         "Mvox/s (wall)": n**3 / wall[name] / 1e6,
                         "equal": bool(np.array_equal(outs[name], ref))})
    results["full_pass"] = rows

    # 2. one interior chunk on a slow store -----------------------------------------
    k = (n // c) // 2
    roi_rows = []
    for s in sigmas:
        for what in ("input", "filtered"):
            found: dict[str, dict[str, object]] = {}
            for _ in range(args.roi_repeat):  # interleaved, as the full pass
                for tool in ("voxzarr halo", "dask-image map_overlap"):
                    seconds, reads, mb = roi_once(tool, what, s, plain, haloed[s], k,
                                                  args.latency)
                    row = found.setdefault(tool, {"sigma": s, "what": what, "tool": tool,
                                                  "first s": seconds, "seconds": seconds,
                                                  "reads": reads, "MB_read": mb})
                    row["seconds"] = min(row["seconds"], seconds)
            roi_rows.extend(found.values())
    for i in range(0, len(roi_rows), 2):
        roi_rows[i]["speedup"] = roi_rows[i + 1]["seconds"] / roi_rows[i]["seconds"]
    results["roi"] = roi_rows

    # 3. storage overhead ------------------------------------------------------------
    over = []
    for chunk in (64, 128, 256):
        row: dict[str, object] = {"chunk": chunk}
        for h in (4, 8, 20):
            row[f"depth {h}"] = f"{100 * storage_overhead((chunk,) * 3, (h,) * 3):.1f}%"
        over.append(row)
    results["overhead"] = over
    results["measured_compressed_overhead"] = {
        s: store_bytes(haloed[s] / "halo") / store_bytes(haloed[s] / "0") - 1 for s in sigmas}

    print(f"## halo benchmark: {n}^3 uint16, chunks {c}^3, {results['threads']} threads; "
          "halo depth / build seconds per sigma: "
          + ", ".join(f"sigma {s:g}: {depth[s]} / {build[s]:.1f} s" for s in sigmas) + "\n")
    print("full pass (ratio = dask-image time / this tool's time; cpu_s: one thread)\n")
    print(table(rows, ["sigma", "tool", "wall_s", "cpu_s", "wall ratio", "cpu ratio",
                       "Mvox/s (wall)", "equal"]))
    print(f"one interior chunk at {args.latency * 1e3:g} ms per read; seconds = best of "
          f"{args.roi_repeat} (runs interleaved), 'first s' = the first run\n")
    print(table(roi_rows, ["sigma", "what", "tool", "seconds", "first s", "reads",
                           "MB_read", "speedup"]))
    print(table(over, ["chunk", "depth 4", "depth 8", "depth 20"]))
    for s in sigmas:
        print(f"measured compressed overhead (chunk {c}, depth {depth[s]}): "
              f"{100 * results['measured_compressed_overhead'][s]:.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
