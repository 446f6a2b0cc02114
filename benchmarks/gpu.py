"""End to end on the GPU vs the CPU, from a zarr store to a zarr store, side by side.

Run on a machine with CuPy and an NVIDIA GPU. Three workloads, each timed with
``device="gpu"`` and ``device="cpu"`` on the same stored data with the same dask thread
pool (``--threads``, default every core), output written to OME-Zarr:

1. **resample**: ``open_image(...).vox.to_isotropic(device=...)`` of a uint16 stack at voxel
   size (1.0, 0.2, 0.2) (z upsampled 5x, order 1), stored chunks (64, 256, 256), output
   chunks (128, 512, 512). Rate = output voxels per second. The GPU computes in float32,
   the CPU in float64, so a uint16 voxel may round the other way at a half-integer tie.
2. **halo filter**: ``open_image(...).vox.filter("gaussian", sigma=..., halo="require")``
   from a stored halo (built once, untimed) of a uint16 cube in 128^3 chunks. Rate = voxels
   per second.
3. **pyramid**: ``voxzarr.pyramid.add_levels`` (read level i - 1, reduce, write level i) for
   ``mean`` and ``gaussian`` on a uint16 stack in 128^3 zstd chunks, into two copies of one
   level-0 store. Rate = input voxels of all levels per second.

Each GPU case runs once untimed first (kernel compilation, memory pool), then the best of
``--repeat`` runs of each device is kept. ``agree``: the two outputs read back from their
stores differ by at most ``max_abs_diff`` (0 = identical) in ``n_diff`` voxels. Usage::

    python3 benchmarks/gpu.py --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dask
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _util import table  # noqa: E402
from gpu_halo import make_volume  # noqa: E402
from gpu_pyramid import _volume as pyramid_volume  # noqa: E402
from gpu_resample import SPACING, make_data  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr.filters import filter_radius  # noqa: E402
from voxzarr.halo import write_halo  # noqa: E402
from voxzarr.pyramid import add_levels  # noqa: E402

DEVICES = ("gpu", "cpu")


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``fn`` (which writes to a store, so returns after the work)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Largest absolute difference and number of differing voxels of two arrays."""
    if a.shape != b.shape:
        return {"max_abs_diff": float("inf"), "n_diff": -1}
    work = np.int32 if a.dtype.kind in "iub" and a.dtype.itemsize <= 2 else np.float64
    diff = np.abs(a.astype(work) - b.astype(work))
    return {"max_abs_diff": float(diff.max()), "n_diff": int(np.count_nonzero(diff))}


def row(workload: str, case: str, nvox: int, times: dict[str, float], agree: dict) -> dict:
    return {"workload": workload, "case": case, "Mvox": nvox / 1e6,
            "gpu_s": times["gpu"], "cpu_s": times["cpu"],
            "gpu_Gvox_s": nvox / times["gpu"] / 1e9, "cpu_Gvox_s": nvox / times["cpu"] / 1e9,
            "gpu_over_cpu": times["cpu"] / times["gpu"], **agree}


def bench_resample(work: Path, shape: tuple[int, ...], repeat: int) -> dict:
    src = work / "stack.ome.zarr"
    host = make_data(shape, np.dtype(np.uint16))
    img = vz.from_array(host, "zyx", voxel_size=dict(zip("zyx", SPACING, strict=True)))
    img.vox.to_ome_zarr(src, chunks=(64, 256, 256), progress=False)
    del host, img
    out_chunks = (128, 512, 512)

    def run(device: str) -> None:
        iso = vz.open_image(src).vox.to_isotropic(device=device, chunks=out_chunks)
        iso.vox.to_ome_zarr(work / f"iso-{device}.ome.zarr", chunks=out_chunks,
                            overwrite=True, progress=False)

    run("gpu")  # compile
    times = {d: best_of(lambda d=d: run(d), repeat) for d in DEVICES}
    got = {d: vz.open_image(work / f"iso-{d}.ome.zarr").values for d in DEVICES}
    nvox = got["gpu"].size
    agree = compare(got["gpu"], got["cpu"])
    del got
    return row("resample", f"to_isotropic {shape} uint16 -> 0.2", nvox, times, agree)


def bench_halo(work: Path, n: int, sigma: float, repeat: int) -> dict:
    path = work / "cube.ome.zarr"
    vz.from_array(make_volume(n), "zyx").vox.to_ome_zarr(path, chunks=(128,) * 3,
                                                        progress=False)
    depth = filter_radius("gaussian", "zyx", sigma=sigma)[0]
    t0 = time.perf_counter()
    write_halo(None, path, depth=depth, progress=False)
    build = time.perf_counter() - t0

    def run(device: str) -> None:
        out = vz.open_image(path).vox.filter("gaussian", sigma=sigma, device=device,
                                             halo="require")
        out.vox.to_ome_zarr(work / f"gauss-{device}.ome.zarr", chunks=(128,) * 3,
                            overwrite=True, progress=False)

    run("gpu")  # compile: one cupyx kernel per block shape
    times = {d: best_of(lambda d=d: run(d), repeat) for d in DEVICES}
    got = {d: vz.open_image(work / f"gauss-{d}.ome.zarr").values for d in DEVICES}
    r = row("halo filter", f"gaussian sigma {sigma:g}, {n}^3 uint16, halo depth {depth}",
            n**3, times, compare(got["gpu"], got["cpu"]))
    r["halo_build_s"] = build
    return r


def bench_pyramid(work: Path, shape: tuple[int, ...], levels: int,
                  repeat: int) -> list[dict]:
    img = vz.from_array(pyramid_volume(shape), "zyx",
                        voxel_size={"z": 1.0, "y": 0.2, "x": 0.2})
    paths = {d: work / f"pyr-{d}.ome.zarr" for d in DEVICES}
    img.vox.to_ome_zarr(paths["gpu"], chunks=128, compressor="zstd", progress=False)
    shutil.copytree(paths["gpu"], paths["cpu"])
    rows = []
    plans: dict = {}
    for method in ("mean", "gaussian"):

        def run(device: str, method: str = method) -> None:
            plans[device] = add_levels(paths[device], levels=levels, method=method,
                                       device=device, overwrite=True, progress=False)

        run("gpu")  # compile
        times = {d: best_of(lambda d=d: run(d), repeat) for d in DEVICES}
        plan = plans["gpu"]
        agree = {"max_abs_diff": 0.0, "n_diff": 0}
        for level in range(1, plan.n_levels):
            c = compare(vz.open_image(paths["gpu"], level).values,
                        vz.open_image(paths["cpu"], level).values)
            agree = {"max_abs_diff": max(agree["max_abs_diff"], c["max_abs_diff"]),
                     "n_diff": agree["n_diff"] + c["n_diff"]}
        nvox = sum(int(np.prod(s)) for s in plan.shapes[:-1])
        rows.append(row("pyramid", f"add_levels {method}, {plan.n_levels - 1} levels of "
                        f"{shape} uint16 zstd", nvox, times, agree))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resample-shape", default="128,1024,1024")
    ap.add_argument("--halo-size", type=int, default=512)
    ap.add_argument("--sigma", type=float, default=2.0)
    ap.add_argument("--pyramid-shape", default="128,1024,1024")
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import cupy

    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    meta = {"device": device, "cupy": cupy.__version__, "cpus": os.cpu_count(),
            "threads": args.threads}
    print(json.dumps(meta), flush=True)
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="vz-gpu-e2e-"))
    try:
        with dask.config.set(scheduler="threads", num_workers=args.threads):
            shape = tuple(int(v) for v in args.resample_shape.split(","))
            rows.append(bench_resample(work, shape, args.repeat))
            print(json.dumps(rows[-1]), flush=True)
            rows.append(bench_halo(work, args.halo_size, args.sigma, args.repeat))
            print(json.dumps(rows[-1]), flush=True)
            shape = tuple(int(v) for v in args.pyramid_shape.split(","))
            rows += bench_pyramid(work, shape, args.levels, args.repeat)
            print(json.dumps(rows[-2:]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n## GPU vs CPU end to end: {device}, {args.threads} dask threads\n")
    print(table(rows, ["workload", "case", "Mvox", "gpu_s", "cpu_s", "gpu_Gvox_s",
                       "cpu_Gvox_s", "gpu_over_cpu", "max_abs_diff", "n_diff"]))
    if args.json:
        Path(args.json).write_text(json.dumps({**meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
