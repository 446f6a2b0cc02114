"""Scaling with cores and workers: a lightsheet time-lapse through every stage, peers beside.

A synthetic uint16 time-lapse ``(t, z, y, x)`` at voxel size (2.0, 0.5, 0.5) micrometre
(smooth tissue-like signal, a slow drift and camera noise; one raw binary frame file per
timepoint with a ``conf.json``) goes through five stages, each timed alone in a fresh
interpreter pinned (``taskset``) to the first N cores:

=========== ============================================== ===============================
stage       voxzarr                                        peer (same input, chunks, codec)
=========== ============================================== ===============================
convert     ``vz.convert(frames folder, out)``              ome-zarr-py ``write_image`` of
                                                           the memory-mapped frames
isotropic   ``to_isotropic(1.0)`` -> ``to_ome_zarr``         dask-image ``affine_transform``
                                                           -> ``to_zarr``
pyramid     ``to_ome_zarr(pyramid=True)`` of the store      ome-zarr-py ``write_image`` (its
                                                           default scaler)
gaussian    ``filter("gaussian", sigma=2,                   dask-image ``gaussian_filter``
            halo="require")`` from the stored halo         (``map_overlap``) -> ``to_zarr``
series      ``to_series(out, memory=...)``                  dask ``rechunk`` -> ``to_zarr``
=========== ============================================== ===============================

Every store is zarr v3, Blosc zstd-3 + shuffle, chunks ``(1, 32, 256, 256)`` (4 MiB).
Each stage runs on 1, 2, 4, ... threads (``--threads``: dask's threaded scheduler with N
workers, numba with N threads, the process pinned to N cores) and on a ``LocalCluster`` of
1, 2, 4, ... worker processes of one thread each (``--workers``; started before the clock,
the whole cluster pinned to N cores). Reported per case: seconds, throughput (MB/s of
uncompressed input), parallel efficiency ``T(1) / (N T(N))`` against the same tool's own
one-core time, ``busy`` (CPU seconds of all threads / (N x seconds), threads only: well
under 1 means cores waited on a serial part) and peak memory (the process's ``VmHWM``; on a
cluster the largest worker's). Workers and modules are warmed up before the clock.

Usage::

    python benchmarks/scaling.py --shape 4,128,1024,1024 --threads 1 2 4 8 16 \\
        --workers 1 2 4 8 --json scaling.json --png benchmarks/scaling.png
    python benchmarks/scaling.py --shape 64,128,1024,1024 --threads 16 --workers 8 \\
        --tools voxzarr --json big.json          # 16 GiB: memory stays bounded

The stages' inputs (converted store, stored halo) are made once, untimed, on every core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

VOXEL = (2.0, 0.5, 0.5)
CHUNKS = (1, 32, 256, 256)
SIGMA = 2.0
STAGES = ("convert", "isotropic", "pyramid", "gaussian", "series")
PEER = {"convert": "ome-zarr-py", "isotropic": "dask-image", "pyramid": "ome-zarr-py",
        "gaussian": "dask-image", "series": "dask rechunk"}


# --- the data ----------------------------------------------------------------------------

def write_frames(folder: Path, shape: tuple[int, ...]) -> None:
    """One raw C-order uint16 file per timepoint plus the ``conf.json`` that describes it."""
    from scipy.ndimage import zoom

    folder.mkdir(parents=True, exist_ok=True)
    t, *spatial = shape
    rng = np.random.default_rng(0)
    coarse = rng.random(tuple(max(2, n // 32) for n in spatial)).astype(np.float32)
    base = zoom(coarse, [n / c for n, c in zip(spatial, coarse.shape, strict=True)],
                order=1)[tuple(slice(0, n) for n in spatial)]
    base = (300 + 1500 * base).astype(np.float32)
    # camera noise drawn once and shifted per frame: realistic compression at a cost that
    # stays small next to the stages (Poisson draws of 16 GiB would take minutes)
    noise = rng.integers(0, 64, size=base.shape, dtype=np.uint16)
    for i in range(t):
        frame = (base * (1 + 0.2 * np.sin(i / 25.0))).astype(np.uint16)
        frame += np.roll(noise, 7 * i, axis=-1)
        frame.tofile(folder / f"image-{i:05d}.bin")
    (folder / "conf.json").write_text(json.dumps(
        {"dims": list(spatial), "dtype": "uint16", "order": "C", "axes": "zyx"}))


# --- one case in a child process ---------------------------------------------------------

_PRELUDE = """
import json, os, sys, time
sys.path.insert(0, {src!r})
import numpy as np, dask, dask.array as da, zarr
from zarr.codecs import BloscCodec
IN, OUT, FRAMES, HALO = {inp!r}, {out!r}, {frames!r}, {halo!r}
N, MODE, SHAPE = {n}, {mode!r}, {shape!r}
CHUNKS, VOXEL, SIGMA, MEMORY = {chunks!r}, {voxel!r}, {sigma!r}, {memory!r}
CODEC = [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")]

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0

def level0(path):
    return da.from_zarr(zarr.open_array(path + "/0", mode="r"))

def to_zarr(arr, path):
    z = zarr.create_array(path, shape=arr.shape, chunks=CHUNKS, dtype=arr.dtype,
                          compressors=CODEC, overwrite=True)
    da.store(arr, z, lock=False)

client = None
if MODE == "workers":
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=N, threads_per_worker=1, processes=True,
                           memory_limit={worker_memory!r}, dashboard_address=None)
    client = Client(cluster)
    ctx = dask.config.set(scheduler=client)
else:
    ctx = dask.config.set(scheduler="threads", num_workers=N)
ctx.__enter__()
import voxzarr as vz
{warm}
_warm()
if client is not None:  # workers of a real cluster are long-lived: start them warm too
    client.run(_warm)
cpu0 = time.process_time()
t0 = time.perf_counter()
"""

# Run before the clock, here and on every worker: the modules a stage uses are imported
# (voxzarr's facade imports lazily) and, for voxzarr, a tiny image goes through the same
# stage so that the first use of each numba kernel (a load from its on-disk cache) is not
# timed either.
_WARM = """
def _warm():
    import importlib, tempfile
    for mod in {modules!r}:
        importlib.import_module(mod)
    if not {tiny!r}:
        return
    tiny = vz.from_array(np.random.default_rng(1).integers(0, 4000, (2, 8, 64, 64),
                         dtype=np.uint16), "tzyx", voxel_size=dict(zip("zyx", VOXEL)))
    with tempfile.TemporaryDirectory() as d, dask.config.set(scheduler="sync"):
        if {stage!r} == "isotropic":
            tiny.vox.to_isotropic(1.0).compute()
        elif {stage!r} == "gaussian":
            tiny.vox.filter("gaussian", sigma=SIGMA).compute()
        elif {stage!r} == "pyramid":
            tiny.vox.to_ome_zarr(d + "/p", pyramid=True, chunks=(1, 8, 32, 32),
                                 progress=False)
        elif {stage!r} == "series":
            tiny.vox.to_series(d + "/s", memory="64MB", progress=False)
"""

_EPILOGUE = """
seconds = time.perf_counter() - t0
cpu = time.process_time() - cpu0  # every thread of this process (not cluster workers)
peak = hwm()
if client is not None:
    peak = max(client.run(hwm).values())
out = {{"seconds": seconds, "peak_mib": peak}}
if client is None:  # busy fraction of the N cores: well under 1 means a serial part
    out["busy"] = cpu / (N * seconds)
print("RESULT " + json.dumps(out))
"""

_MODULES = {
    "voxzarr": ["voxzarr.io", "voxzarr.convert", "voxzarr.resample", "voxzarr.filters",
                "voxzarr.halo", "voxzarr.pyramid", "voxzarr.series", "numcodecs"],
    "ome-zarr-py": ["ome_zarr.writer", "ome_zarr.scale", "numcodecs"],
    "dask-image": ["dask_image.ndinterp", "dask_image.ndfilters", "scipy.ndimage",
                   "numcodecs"],
    "dask rechunk": ["numcodecs"],
}


CASES = {
    ("convert", "voxzarr"): """
vz.convert(FRAMES, OUT, voxel_size=VOXEL, axes="tzyx", chunks=CHUNKS, overwrite=True,
           progress=False, verify=False)
""",
    ("convert", "ome-zarr-py"): """
from ome_zarr.writer import write_image
files = sorted(f for f in os.listdir(FRAMES) if f.endswith(".bin"))
frames = [da.from_array(np.memmap(os.path.join(FRAMES, f), dtype="uint16", mode="r",
                                  shape=tuple(SHAPE[1:])), chunks=CHUNKS[1:]) for f in files]
g = zarr.open_group(OUT, mode="w", zarr_format=3)
write_image(da.stack(frames), g, axes="tzyx", scale_factors=[],
            storage_options=dict(chunks=CHUNKS, compressors=CODEC))
""",
    ("isotropic", "voxzarr"): """
img = vz.open_image(IN)
img.vox.to_isotropic(1.0).vox.to_ome_zarr(OUT, chunks=CHUNKS, overwrite=True, progress=False)
""",
    ("isotropic", "dask-image"): """
import dask_image.ndinterp as dndi
src = level0(IN)
out_shape = tuple(int(round(n * v / 1.0)) for n, v in zip(SHAPE[1:], VOXEL))
m = np.array([1.0] + [1.0 / v for v in VOXEL])            # input index per output index
off = 0.5 * (m - 1.0)                                     # voxel centres line up
res = dndi.affine_transform(src, np.diag(m), off, (SHAPE[0],) + out_shape, order=1,
                            output_chunks=CHUNKS, mode="nearest")
to_zarr(res, OUT)
""",
    ("pyramid", "voxzarr"): """
img = vz.open_image(IN)
img.vox.to_ome_zarr(OUT, pyramid=True, chunks=CHUNKS, overwrite=True, progress=False)
""",
    ("pyramid", "ome-zarr-py"): """
from ome_zarr.writer import write_image
g = zarr.open_group(OUT, mode="w", zarr_format=3)
write_image(level0(IN), g, axes="tzyx",
            storage_options=dict(chunks=CHUNKS, compressors=CODEC))
""",
    ("gaussian", "voxzarr"): """
img = vz.open_image(HALO)
img.vox.filter("gaussian", sigma=SIGMA, halo="require").vox.to_ome_zarr(
    OUT, chunks=CHUNKS, overwrite=True, progress=False)
""",
    ("gaussian", "dask-image"): """
import dask_image.ndfilters as dndf
res = dndf.gaussian_filter(level0(IN), sigma=(0, SIGMA, SIGMA, SIGMA), mode="nearest")
to_zarr(res, OUT)
""",
    ("series", "voxzarr"): """
vz.open_image(IN).vox.to_series(OUT, memory=MEMORY, overwrite=True, progress=False)
""",
    ("series", "dask rechunk"): """
src = level0(IN)
t = SHAPE[0]
# series chunks of the same 4 MiB: whole time series, the rest split evenly over space
side = int(round((CHUNKS[1] * CHUNKS[2] * CHUNKS[3] / t) ** (1 / 3)))
target = (t, min(SHAPE[1], max(1, side)), min(SHAPE[2], 4 * side), min(SHAPE[3], 4 * side))
res = src.rechunk(target, method="tasks")
z = zarr.create_array(OUT, shape=res.shape, chunks=target, dtype=res.dtype,
                      compressors=CODEC, overwrite=True)
da.store(res, z, lock=False)
""",
}


def run_case(stage: str, tool: str, mode: str, n: int, paths: dict[str, Path],
             shape: tuple[int, ...], memory: str, worker_memory: str,
             timeout: float) -> dict:
    """Time one (stage, tool) on ``n`` threads or workers in a fresh pinned interpreter."""
    out = paths["work"] / f"out-{stage}"
    shutil.rmtree(out, ignore_errors=True)
    code = (_PRELUDE.format(src=str(SRC), inp=str(paths["conv"]), out=str(out),
                            frames=str(paths["frames"]), halo=str(paths["halo"]), n=n,
                            mode=mode, shape=tuple(shape), chunks=CHUNKS, voxel=VOXEL,
                            sigma=SIGMA, memory=memory, worker_memory=worker_memory,
                            warm=_WARM.format(stage=stage, modules=_MODULES[tool],
                                              tiny=tool == "voxzarr"))
            + textwrap.dedent(CASES[(stage, tool)]) + _EPILOGUE.format())
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = ["taskset", "-c", f"0-{n - 1}", sys.executable, "-c", code]
    if shutil.which("taskset") is None or n > (os.cpu_count() or 1):
        cmd = cmd[3:]
    row = {"stage": stage, "tool": tool, "mode": mode, "n": n}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        row["error"] = f"over {timeout:.0f} s"
        return row
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        row["error"] = tail[-1][:200] if tail else f"exit {proc.returncode}"
        return row
    row.update(json.loads(lines[-1][len("RESULT "):]))
    shutil.rmtree(out, ignore_errors=True)
    return row


def prepare(work: Path, shape: tuple[int, ...]) -> dict[str, Path]:
    """Frames folder, the converted store and a copy with a stored halo (untimed)."""
    import voxzarr as vz
    from voxzarr.halo import write_halo

    paths = {"work": work, "frames": work / "frames", "conv": work / "conv.ome.zarr",
             "halo": work / "halo.ome.zarr"}
    if (paths["halo"] / "zarr.json").exists() and (paths["work"] / "shape.json").exists() \
            and json.loads((paths["work"] / "shape.json").read_text()) == list(shape):
        print("reusing the prepared inputs", flush=True)
        return paths
    t0 = time.perf_counter()
    write_frames(paths["frames"], shape)
    vz.convert(paths["frames"], paths["conv"], voxel_size=VOXEL, axes="tzyx", chunks=CHUNKS,
               overwrite=True, progress=False, verify=False)
    shutil.copytree(paths["conv"], paths["halo"])
    write_halo(None, paths["halo"], for_filter=("gaussian", {"sigma": SIGMA}), progress=False)
    warm_up(work / "warm")
    (paths["work"] / "shape.json").write_text(json.dumps(list(shape)))
    print(f"prepared {shape} in {time.perf_counter() - t0:.1f} s", flush=True)
    return paths


def warm_up(work: Path) -> None:
    """Run every voxzarr stage once on a tiny image, so numba's on-disk cache is filled
    and no timed case pays for compiling kernels."""
    import voxzarr as vz
    from voxzarr.halo import write_halo

    rng = np.random.default_rng(1)
    img = vz.from_array(rng.integers(0, 4000, (3, 16, 64, 64), dtype=np.uint16), "tzyx",
                        voxel_size=dict(zip("zyx", VOXEL, strict=True)))
    small = (1, 8, 32, 32)
    img.vox.to_isotropic(1.0).vox.to_ome_zarr(work / "iso", chunks=small, overwrite=True,
                                              progress=False)
    img.vox.to_ome_zarr(work / "pyr", pyramid=True, chunks=small, overwrite=True,
                        progress=False)
    write_halo(None, work / "pyr", for_filter=("gaussian", {"sigma": SIGMA}), progress=False)
    vz.open_image(work / "pyr").vox.filter("gaussian", sigma=SIGMA, halo="require").compute()
    img.vox.to_series(work / "ser", memory="64MB", overwrite=True, progress=False)
    shutil.rmtree(work, ignore_errors=True)


def add_ratios(rows: list[dict], nbytes: int) -> None:
    """Throughput and parallel efficiency against the same tool's 1-core time."""
    one = {(r["stage"], r["tool"], r["mode"]): r["seconds"] for r in rows
           if r.get("n") == 1 and "seconds" in r}
    for r in rows:
        if "seconds" not in r:
            continue
        r["MB_s"] = nbytes / r["seconds"] / 1e6
        # a cluster without a 1-worker run is compared with one thread
        t1 = one.get((r["stage"], r["tool"], r["mode"]),
                     one.get((r["stage"], r["tool"], "threads")))
        if t1 is not None:
            r["efficiency"] = t1 / (r["n"] * r["seconds"])


def draw(rows: list[dict], png: Path) -> None:
    """Throughput against cores, one panel per mode, one colour per stage (peers dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ("threads", "workers") if any(r["mode"] == m for r in rows)]
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 5), squeeze=False)
    colours = dict(zip(STAGES, ("C0", "C1", "C2", "C3", "C4"), strict=True))
    for ax, mode in zip(axes[0], modes, strict=True):
        for stage in STAGES:
            for tool in ("voxzarr", PEER[stage]):
                pts = sorted((r["n"], r["MB_s"]) for r in rows if r["mode"] == mode
                             and r["stage"] == stage and r["tool"] == tool and "MB_s" in r)
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, "-o" if tool == "voxzarr" else "--x", color=colours[stage],
                        label=f"{stage}: {tool}")
                if tool == "voxzarr" and xs[0] == 1:  # ideal scaling from the 1-core point
                    ax.plot(xs, [ys[0] * x for x in xs], ":", color=colours[stage], alpha=0.4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("threads" if mode == "threads" else "worker processes (1 thread each)")
        ax.set_ylabel("MB/s of uncompressed input")
        ax.set_title(f"{mode}: solid voxzarr, dashed peer, dotted ideal")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def table(rows: list[dict]) -> str:
    cols = ["stage", "tool", "mode", "n", "seconds", "MB_s", "efficiency", "busy", "peak_mib"]
    out = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    for r in rows:
        cells = [r.get("error", "") if c == "seconds" and "error" in r else
                 (f"{r[c]:.3g}" if isinstance(r.get(c), float) else str(r.get(c, "")))
                 for c in cols]
        out += "| " + " | ".join(cells) + " |\n"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="4,128,1024,1024", help="t,z,y,x")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4, 8])
    ap.add_argument("--stages", nargs="*", default=list(STAGES), choices=STAGES)
    ap.add_argument("--tools", choices=("voxzarr", "peers", "both"), default="both")
    ap.add_argument("--peer-workers-max", action="store_true",
                    help="peers on the largest cluster only (their curves are in --threads)")
    ap.add_argument("--memory", default="1GB", help="to_series budget")
    ap.add_argument("--worker-memory", default="4GB", help="LocalCluster memory_limit")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None)
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    nbytes = int(np.prod(shape)) * 2
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vz-scaling-"))
    print(f"{shape} uint16, {nbytes / 2**30:.2f} GiB, work in {work}", flush=True)
    paths = prepare(work, shape)
    tools = {"voxzarr": ["voxzarr"], "peers": None, "both": None}[args.tools]
    rows: list[dict] = []
    plan = [("threads", n) for n in args.threads] + [("workers", n) for n in args.workers]
    for stage in args.stages:
        names = tools or (["voxzarr", PEER[stage]] if args.tools == "both" else [PEER[stage]])
        for mode, n in plan:
            for tool in names:
                if (tool != "voxzarr" and mode == "workers" and args.peer_workers_max
                        and n != max(args.workers)):
                    continue
                row = run_case(stage, tool, mode, n, paths, shape, args.memory,
                               args.worker_memory, args.timeout)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:  # kept current, so a run cut short still leaves its rows
                    Path(args.json).write_text(json.dumps(
                        {"shape": shape, "bytes": nbytes, "rows": rows}, indent=1))
    add_ratios(rows, nbytes)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"shape": shape, "bytes": nbytes, "rows": rows},
                                              indent=1))
    if args.png:
        draw(rows, Path(args.png))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
