"""Where a stage's serial part goes: time the GIL is held, by category, at N threads.

A stage whose threads hold the GIL for ``g`` seconds per run cannot run faster than ``g``
however many cores it has: the GIL-held time is a serial part. This script prepares the
same synthetic input as ``benchmarks/scaling.py`` (uint16 ``(t, z, y, x)``), runs one stage
once to warm up, then runs it repeatedly on ``--threads`` dask threads while ``py-spy``
(an external sampling profiler, not a voxzarr dependency: ``pip install py-spy``) samples
this very process with ``--gil`` (only the thread holding the GIL is recorded). It prints
the wall time per run and the GIL-held seconds per run split into: dask's graph conversion
and optimisation, dask's scheduler loop, graph building by voxzarr, and the Python parts of
the tasks (resampling/filter bodies, reads, writes).

Usage::

    python benchmarks/gil_profile.py --stage isotropic --shape 8,64,1024,1024 --threads 16
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dask

sys.path.insert(0, str(Path(__file__).parent))
import scaling  # noqa: E402

import voxzarr as vz  # noqa: E402

RATE = 400  # samples per second


def run_stage(stage: str, paths: dict[str, Path], out: Path) -> None:
    if stage == "isotropic":
        vz.open_image(paths["conv"]).vox.to_isotropic(1.0).vox.to_ome_zarr(
            out, chunks=scaling.CHUNKS, overwrite=True, progress=False)
    elif stage == "gaussian":
        vz.open_image(paths["halo"]).vox.filter(
            "gaussian", sigma=scaling.SIGMA, halo="require").vox.to_ome_zarr(
            out, chunks=scaling.CHUNKS, overwrite=True, progress=False)
    elif stage == "pyramid":
        vz.open_image(paths["conv"]).vox.to_ome_zarr(out, pyramid=True, chunks=scaling.CHUNKS,
                                                    overwrite=True, progress=False)
    else:
        vz.open_image(paths["conv"]).vox.to_series(out, memory="1GB", overwrite=True,
                                                   progress=False)


def category(stack: str) -> str:
    if "_optimized_dsk" in stack or "convert_legacy" in stack:
        return "dask: graph conversion and optimisation"
    if "execute_task" in stack or "_execute_subgraph" in stack:
        for mark, name in (("_separable_block", "resampling"), ("_FastTarget", "write"),
                           ("run_core", "filter"), ("read_region", "read"),
                           ("_ChunkReader", "read"), ("series", "series")):
            if mark in stack:
                return f"task: {name} (Python parts)"
        return "task: other"
    if "get_async" in stack:
        return "dask: scheduler loop"
    if "voxzarr" in stack:
        return "voxzarr: graph building and planning"
    if "concurrent/futures/thread.py" in stack:
        return "codec pool (Python parts)"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=("isotropic", "gaussian", "pyramid", "series"),
                    default="isotropic")
    ap.add_argument("--shape", default="2,64,1024,1024", help="t,z,y,x")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seconds", type=float, default=6.0, help="sampling window")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed (pip install py-spy): nothing to sample with")
    shape = tuple(int(s) for s in args.shape.split(","))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vz-gil-"))
    paths = scaling.prepare(work, shape)
    out = work / f"{args.stage}-out"
    dask.config.set(num_workers=args.threads)
    run_stage(args.stage, paths, out)  # warm: imports, numba cache loads
    raw = work / "gil.txt"
    runs: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            run_stage(args.stage, paths, out)
            runs.append(time.perf_counter() - t0)

    worker = threading.Thread(target=loop)
    worker.start()
    time.sleep(0.2)
    rec = subprocess.run([spy, "record", "--gil", "--rate", str(RATE), "--format", "raw",
                          "--duration", str(int(args.seconds)), "--pid", str(os.getpid()),
                          "-o", str(raw)], capture_output=True, text=True)
    stop.set()
    worker.join()
    if rec.returncode != 0 or not raw.exists():
        # typically: not allowed to attach (ptrace); py-spy says so on stderr
        sys.exit(f"py-spy could not sample this process: {rec.stderr.strip()[-500:]}")
    held: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "gil_profile.py" in stack and "run_stage" not in stack:
            continue  # this script's own sampling loop
        held[category(stack)] += int(n)
    per_run = sum(runs) / len(runs)
    n_runs = args.seconds / per_run
    total = sum(held.values()) / RATE / n_runs
    print(f"## {args.stage}, {shape} uint16, {args.threads} threads: {per_run:.2f} s per run "
          f"({len(runs)} runs); GIL held {total:.3f} s per run = "
          f"{total / per_run:.0%} of the wall time\n")
    print("| where the GIL is held | s per run | share |")
    print("|---|---|---|")
    for name, n in held.most_common():
        s = n / RATE / n_runs
        print(f"| {name} | {s:.3f} | {s / total:.0%} |")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
