"""Pyramid levels per second from a zarr store, CPU vs GPU (run on a machine with CuPy).

Writes one level-0 OME-Zarr image, then times ``voxzarr.pyramid.add_levels`` (read level i-1
from the store, reduce, write level i) on each device, for ``mean`` and ``gaussian``, with and
without compression; and times the reduce kernels alone on arrays already in memory.

    python benchmarks/gpu_pyramid.py --shape 256,2048,2048 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _volume(shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    smooth = (np.sin(z / 9.0) * np.cos(y / 23.0) * np.sin(x / 17.0) + 1.0) * 900.0
    return (100 + smooth + rng.integers(0, 64, shape)).astype(np.uint16)


def _kernel_rates(x: np.ndarray, repeat: int) -> list[dict]:
    """Reduce kernels alone: Gvox/s of input, host arrays vs device-resident arrays."""
    from voxzarr._downsample import gaussian_reduce_block, reduce_block

    out = []
    try:
        import cupy
    except ImportError:
        cupy = None
    depth = (0, 2, 2)
    for method in ("mean", "gaussian", "mode", "median"):
        def run(a, method=method):
            if method == "gaussian":
                return gaussian_reduce_block(a, (1, 2, 2), depth)
            return reduce_block(a, (1, 2, 2), method)

        results = {}
        for device in ("cpu", "gpu"):
            if device == "gpu" and cupy is None:
                continue
            a = x if device == "cpu" else cupy.asarray(x)
            res = run(a)  # warm up (kernel compilation)
            results[device] = res if device == "cpu" else res.get()
            if device == "gpu":
                cupy.cuda.Device().synchronize()
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                run(a)
                if device == "gpu":
                    cupy.cuda.Device().synchronize()
                best = min(best, time.perf_counter() - t0)
            out.append({"method": method, "device": device, "seconds": best,
                        "gvox_per_s": x.size / best / 1e9})
            print(f"kernel {method:9s} {device}: {x.size / best / 1e9:7.2f} Gvox/s", flush=True)
        if "gpu" in results:  # same results on both devices
            diff = np.abs(results["gpu"].astype(np.int64) - results["cpu"].astype(np.int64))
            out[-1].update(max_abs_diff=int(diff.max()), n_diff=int(np.count_nonzero(diff)))
            print(f"       {method} gpu vs cpu: max |diff| {diff.max()}, "
                  f"{np.count_nonzero(diff)} of {diff.size} voxels differ", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="256,2048,2048")
    ap.add_argument("--kernel-shape", default="32,1024,1024")
    ap.add_argument("--chunks", type=int, default=128)
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import dask

    import voxzarr as vz
    from voxzarr._xp import gpu_available
    from voxzarr.pyramid import add_levels

    shape = tuple(int(v) for v in args.shape.split(","))
    results: dict = {"shape": shape, "cpus": os.cpu_count(), "threads": dask.config.get(
        "num_workers", None), "store": [], "kernels": []}
    kshape = tuple(int(v) for v in args.kernel_shape.split(","))
    results["kernels"] = _kernel_rates(_volume(kshape), repeat=2)
    tmp = Path(tempfile.mkdtemp(prefix="vz-gpu-pyr-"))
    try:
        x = _volume(shape)
        img = vz.from_array(x, "zyx", voxel_size={"z": 1.0, "y": 0.2, "x": 0.2})
        for codec in ("zstd", None):
            path = tmp / f"{codec}.ome.zarr"
            t0 = time.perf_counter()
            img.vox.to_ome_zarr(path, chunks=args.chunks, compressor=codec,
                                progress=False)
            print(f"level 0 written ({codec}): {time.perf_counter() - t0:.1f} s", flush=True)
            for method in ("mean", "gaussian"):
                for device in ("cpu", "gpu") if gpu_available() else ("cpu",):
                    t0 = time.perf_counter()
                    plan = add_levels(path, levels=args.levels, method=method, device=device,
                                      overwrite=True, progress=False)
                    dt = time.perf_counter() - t0
                    row = {"codec": codec, "method": method, "device": device, "seconds": dt,
                           "levels": plan.n_levels - 1,
                           "levels_per_s": (plan.n_levels - 1) / dt,
                           "input_gvox_per_s": sum(int(np.prod(s)) for s in plan.shapes[:-1])
                           / dt / 1e9}
                    results["store"].append(row)
                    print(f"store codec={codec} {method:8s} {device}: {dt:6.2f} s, "
                          f"{row['levels_per_s']:.2f} levels/s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
