"""Image -> series transpose: voxzarr vs dask rechunk vs xarray vs a plain copy (the floor).

One run, same source and target chunks and codec (Blosc zstd-3 + byte shuffle) for every
tool; each conversion runs alone in a fresh interpreter and reports wall time, throughput
(uncompressed MB/s), CPU seconds (all threads; robust when other jobs share the machine)
and peak RSS (the kernel's high-water mark ``VmHWM``, so a large parent
does not leak into the child's figure as ``ru_maxrss`` would):

* ``copy``: decode + encode of the source into an array with the source's chunks, through
  zarr-python in slabs of frames: the floor any transpose pays;
* ``voxzarr``: ``img.vox.to_series(out, memory=...)`` (one row per budget; ``staged`` =
  ``staging=True``, through a scratch array instead of re-reading the source per band);
* ``dask``: ``da.from_zarr(src).rechunk(series chunks, method="tasks")`` + ``da.store``
  on the local threaded scheduler (no memory bound);
* ``xarray``: ``xr.open_zarr(src)[...].chunk(series chunks).to_zarr(out)``;
* on a ``dask.distributed`` ``LocalCluster`` of one worker process with 2 threads and
  ``memory_limit`` = the budget (the whole worker process, interpreter included, while
  voxzarr's budget counts only its data), started before the clock: ``dask tasks`` (the
  same task rechunk), ``dask p2p`` (``array.rechunk.method = "p2p"``, the peer-to-peer
  rechunk built for bounded memory) and ``voxzarr`` (its tasks submitted to the cluster,
  ``memory=`` what the worker has left under its pause threshold, 80 % of the limit, after
  its own footprint: a worker above it stops taking tasks).
  CPU seconds and peak RSS add the worker process to the client's; "over start" is above
  both processes' RSS before the conversion.

Then the time to read one voxel's full series (median of 20 voxels, zarr-level) from the
source layout and from each result, and a check that every result equals the source.

The source is synthetic 12-bit camera-like data (a smooth image times a slow drift plus
Poisson noise), stored one timepoint per chunk.

Usage::

    python benchmarks/series.py [--shape 1000,512,512] [--memory 512MB] [--workdir DIR]
        [--extra-budgets 128MB] [--skip xarray,cluster] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import table  # noqa: E402

SRC_ROOT = str(Path(__file__).resolve().parents[1] / "src")

_PEAK = """
def _hwm():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

_RSS = """
def _rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
"""

#: the bounded cluster of the ``cluster`` cases, started before the clock
_CLUSTER = """
import distributed, dask
cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                   memory_limit=MEMORY, dashboard_address=None)
client = distributed.Client(cluster)

def _wstats():
    import time
    return {"cpu": time.process_time(), "hwm": _hwm(), "rss": _rss()}

_w0 = client.run(_wstats)
"""

_CLUSTER_DONE = """
_w1 = client.run(_wstats)
cpu += sum(_w1[w]["cpu"] - _w0[w]["cpu"] for w in _w1)
worker_peak = sum(_w1[w]["hwm"] for w in _w1)
worker_base = sum(_w0[w]["rss"] for w in _w1)
client.close()
cluster.close()
"""

_DASK_STORE = """
import dask.array as da, zarr
from zarr.codecs import BloscCodec
x = da.from_zarr(SRC + "/0")
dst = zarr.create_array(OUT, shape=x.shape, dtype=x.dtype, chunks=CHUNKS,
                        compressors=BloscCodec(cname="zstd", clevel=3,
                                               shuffle="shuffle"), fill_value=0)
"""

CASES = {
    "copy": """
        import zarr
        src = zarr.open_array(SRC + "/0", mode="r")
        dst = zarr.create_array(OUT, shape=src.shape, dtype=src.dtype, chunks=src.chunks,
                                compressors=src.compressors, fill_value=0)
        step = max(1, (64 << 20) // (src.nbytes // src.shape[0]))
        for t0 in range(0, src.shape[0], step):
            dst[t0:t0 + step] = src[t0:t0 + step]
    """,
    "voxzarr": """
        import voxzarr as vz
        vz.open_image(SRC).vox.to_series(OUT, memory=MEMORY, staging=STAGING,
                                         progress=False)
    """,
    "dask": """
        import dask.array as da, zarr
        from zarr.codecs import BloscCodec
        x = da.from_zarr(SRC + "/0")
        dst = zarr.create_array(OUT, shape=x.shape, dtype=x.dtype, chunks=CHUNKS,
                                compressors=BloscCodec(cname="zstd", clevel=3,
                                                       shuffle="shuffle"), fill_value=0)
        da.store(x.rechunk(CHUNKS, method="tasks"), dst, lock=False)
    """,
    "dask-cluster": _DASK_STORE + """
da.store(x.rechunk(CHUNKS, method="tasks"), dst, lock=False)
""",
    "dask-p2p": _DASK_STORE + """
with dask.config.set({"array.rechunk.method": "p2p"}):
    y = x.rechunk(CHUNKS)
da.store(y, dst, lock=False)
""",
    "voxzarr-cluster": """
import voxzarr as vz
from dask.utils import parse_bytes
# voxzarr's budget counts its data only: give it what the worker has left under its pause
# threshold (80 % of memory_limit) after its own footprint
pause = dask.config.get("distributed.worker.memory.pause")
left = int(pause * parse_bytes(MEMORY)) - max(w["rss"] for w in _w0.values())
vz.open_image(SRC).vox.to_series(OUT, memory=left, staging=STAGING, progress=False)
""",
    "xarray": """
        import xarray as xr
        from zarr.codecs import BloscCodec
        ds = xr.open_zarr(SRC, consolidated=False, zarr_format=3)
        var = ds["0"].rename(None)
        dims = var.dims
        out = var.chunk(dict(zip(dims, CHUNKS))).to_dataset(name="image")
        comp = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
        out.to_zarr(OUT, zarr_format=3, consolidated=False,
                    encoding={"image": {"chunks": CHUNKS, "compressors": comp}})
    """,
}


def run_case(name: str, src: Path, out: Path, chunks: tuple[int, ...], memory: str,
             staging: str, timeout: float = 600) -> dict:
    """Run one conversion in a fresh interpreter; time, peak RSS and its baseline."""
    on_cluster = name in CLUSTER_CASES
    code = textwrap.dedent(f"""
        if __name__ == "__main__":  # worker processes are spawned from this script
            import json, time, sys
            sys.path.insert(0, {SRC_ROOT!r})
            SRC, OUT, CHUNKS = {str(src)!r}, {str(out)!r}, {tuple(chunks)!r}
            MEMORY, STAGING = {memory!r}, {staging!r}
            STAGING = {{"auto": "auto", "on": True, "off": False}}[STAGING]
            import numpy, zarr, dask.array, xarray  # imports are not the tool's cost
    """)
    body = textwrap.dedent(_PEAK) + textwrap.dedent(_RSS)
    body += textwrap.dedent(_CLUSTER) if on_cluster else ""
    body += textwrap.dedent("""
        worker_peak = worker_base = 0
        base = _hwm()
        _start, _cpu = time.perf_counter(), time.process_time()
    """) + textwrap.dedent(CASES[name]) + textwrap.dedent("""
        elapsed, cpu = time.perf_counter() - _start, time.process_time() - _cpu
    """)
    body += textwrap.dedent(_CLUSTER_DONE) if on_cluster else ""
    body += textwrap.dedent("""
        print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak": _hwm() + worker_peak,
                          "base": base + worker_base}))
    """)
    code += textwrap.indent(body, "    ")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s"}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["failed"]
        # the exception line, not a warning printed at shutdown after it
        errors = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception|KilledWorker)\b", ln)]
        return {"error": (errors or lines)[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: cases run on the bounded LocalCluster (``--skip cluster`` leaves them all out)
CLUSTER_CASES = ("dask-cluster", "dask-p2p", "voxzarr-cluster")


def make_source(path: Path, shape: tuple[int, ...], dims: str) -> None:
    """Camera-like uint16 movie, one timepoint per chunk, written frame slab by slab."""
    import dask.array as da
    from scipy.ndimage import zoom

    import voxzarr as vz

    rng = np.random.default_rng(0)
    spatial = shape[1:]
    coarse = rng.random(tuple(max(2, n // 32) for n in spatial)).astype(np.float32)
    base = zoom(coarse, [n / c for n, c in zip(spatial, coarse.shape, strict=True)],
                order=1)[tuple(slice(0, n) for n in spatial)]
    base = 300 + 1500 * base

    def frames(block_info=None):
        t0, t1 = block_info[None]["array-location"][0]
        r = np.random.default_rng(t0)
        drift = 1 + 0.2 * np.sin(np.arange(t0, t1) / 25.0)
        lam = base[None] * drift.reshape((-1,) + (1,) * len(spatial))
        return r.poisson(lam).astype(np.uint16)

    data = da.map_blocks(frames, chunks=((1,) * shape[0], *[(n,) for n in spatial]),
                         dtype=np.uint16, meta=np.array((), dtype=np.uint16))
    img = vz.from_array(data, dims=dims, voxel_size={"t": 0.1})
    img.vox.to_ome_zarr(path, chunks=(1, *spatial), overwrite=True, progress=False)


def voxel_read_ms(path: Path, n: int = 20, seed: int = 1) -> float:
    """Median milliseconds to read one voxel's whole series straight from zarr."""
    import zarr

    arr = zarr.open_array(path, mode="r")
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(n):
        idx = tuple(int(rng.integers(0, s)) for s in arr.shape[1:])
        t0 = time.perf_counter()
        arr[(slice(None), *idx)]
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def same_as_source(src: Path, out: Path, n: int = 50) -> bool:
    """Spot check: ``n`` random voxel series, plus the first and last frame, equal."""
    import zarr

    a, b = zarr.open_array(src, mode="r"), zarr.open_array(out, mode="r")
    if a.shape != b.shape:
        return False
    rng = np.random.default_rng(2)
    for _ in range(n):
        idx = (slice(None), *(int(rng.integers(0, s)) for s in a.shape[1:]))
        if not np.array_equal(a[idx], b[idx]):
            return False
    return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[-1], b[-1]))


def bench(shape: tuple[int, ...], memory: str, extra: list[str], skip: set[str],
          work: Path, repeat: int = 1) -> tuple[list[dict], list[dict], tuple[int, ...]]:
    from voxzarr.series import parse_memory, plan_to_series

    dims = {3: "tyx", 4: "tzyx"}[len(shape)]
    src = work / f"src-{'x'.join(map(str, shape))}.ome.zarr"
    if not (src / "zarr.json").exists():
        t0 = time.perf_counter()
        make_source(src, shape, dims)
        print(f"source {shape} written in {time.perf_counter() - t0:.1f} s", flush=True)
    nbytes = math.prod(shape) * 2
    plan = plan_to_series(dims, shape, 2, budget=parse_memory(memory),
                          source_chunks=tuple(((1,) * shape[0] if i == 0 else (n,))
                                              for i, n in enumerate(shape)),
                          threads=min(8, os.cpu_count() or 1))
    chunks = plan.chunks
    runs = [("copy", memory, "auto", "copy")]
    runs.append(("voxzarr", memory, "auto", f"voxzarr {memory}"))
    runs.append(("voxzarr", memory, "on", f"voxzarr {memory} staged"))
    for m in extra:
        runs.append(("voxzarr", m, "auto", f"voxzarr {m}"))
    runs += [("dask", memory, "auto", "dask rechunk"), ("xarray", memory, "auto", "xarray")]
    runs += [("dask-cluster", memory, "auto", f"dask tasks, cluster {memory}"),
             ("dask-p2p", memory, "auto", f"dask p2p, cluster {memory}"),
             ("voxzarr-cluster", memory, "auto", f"voxzarr {memory}, cluster {memory}")]
    # one series from the source layout decodes every frame: a few voxels are enough
    rows, reads = [], [{"layout": "source (1 frame / chunk)",
                        "one series ms": voxel_read_ms(src / "0", n=3)}]
    copy_s = copy_cpu = None
    for case, mem, staging, label in runs:
        if case in skip or ("cluster" in skip and case in CLUSTER_CASES):
            continue
        out = work / f"out-{label.replace(' ', '-')}.zarr"
        shutil.rmtree(out, ignore_errors=True)
        print(f"running {label} ...", flush=True)
        r: dict = {}
        for _ in range(repeat):  # best of ``repeat``: other jobs share the machine
            shutil.rmtree(out, ignore_errors=True)
            one = run_case(case, src, out, chunks, mem, staging)
            if "error" in one or not r or one["seconds"] < r["seconds"]:
                r = one
            if "error" in one:
                break
        row = {"tool": label}
        if "error" in r:
            row["error"] = r["error"][:80]
            rows.append(row)
            continue
        secs = r["seconds"]
        copy_s = secs if case == "copy" else copy_s
        copy_cpu = r["cpu"] if case == "copy" else copy_cpu
        arr_path = out / ("0" if case.startswith("voxzarr") else "image" if case == "xarray"
                          else "")
        row.update({
            "seconds": secs,
            "MB/s": nbytes / 1e6 / secs,
            "x copy": secs / copy_s if copy_s else float("nan"),
            "CPU s": r["cpu"],
            "CPU x copy": r["cpu"] / copy_cpu if copy_cpu else float("nan"),
            "peak RSS MiB": r["peak"] / 2**20,
            "over start MiB": (r["peak"] - r["base"]) / 2**20,
            "equal": same_as_source(src / "0", arr_path),
        })
        rows.append(row)
        if case != "copy":
            reads.append({"layout": label, "one series ms": voxel_read_ms(arr_path)})
        shutil.rmtree(out, ignore_errors=True)
    return rows, reads, chunks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="1000,512,512")
    p.add_argument("--memory", default="512MB")
    p.add_argument("--extra-budgets", default="", help="more voxzarr budgets, comma-separated")
    p.add_argument("--skip", default="", help="tools to leave out, comma-separated")
    p.add_argument("--workdir", default=None)
    p.add_argument("--repeat", type=int, default=1, help="best of this many runs per tool")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vz-series-"))
    work.mkdir(parents=True, exist_ok=True)
    extra = [m for m in args.extra_budgets.split(",") if m]
    skip = set(filter(None, args.skip.split(",")))
    rows, reads, chunks = bench(shape, args.memory, extra, skip, work, args.repeat)
    print(f"\nshape {shape} uint16 ({math.prod(shape) * 2 / 2**20:.0f} MiB), source one frame "
          f"per chunk, series chunks {chunks}, {os.cpu_count()} CPUs\n")
    print(table(rows, ["tool", "seconds", "MB/s", "x copy", "CPU s", "CPU x copy",
                       "peak RSS MiB", "over start MiB", "equal", "error"]))
    print(table(reads, ["layout", "one series ms"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"shape": shape, "chunks": chunks,
                                               "rows": rows, "reads": reads}, indent=1))


if __name__ == "__main__":
    main()
