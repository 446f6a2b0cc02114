"""CPU resampling benchmark: voxzarr vs dask-image vs scipy, side by side in one run.

Two parts (see benchmarks/RESULTS.md, section "resample"):

1. Throughput. A uint16 stack at voxel size (1.0, 0.2, 0.2) made isotropic at 0.2 (order 1,
   mode nearest), output voxels per second for
   - voxzarr ``ndinterp.affine_transform`` (what ``img.vox.to_isotropic`` runs),
   - dask-image ``affine_transform`` given ``np.diag(m)`` (its 1-D form is wrong off the
     origin chunk), same input chunks, output chunks and dask threads,
   - scipy ``affine_transform`` on the whole array, single-threaded.
   The chunked results are checked against scipy's.
2. Streaming. The same stack stored as OME-Zarr, ``voxzarr isotropic`` to a new OME-Zarr in
   a child process; its peak RSS (``resource.getrusage``) and wall time.

Usage::

    python benchmarks/resample.py                    # (128, 1024, 1024), as in the issue
    python benchmarks/resample.py --shape 32 512 512 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from scipy import ndimage as ndi

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import voxzarr as vz  # noqa: E402
from voxzarr import ndinterp  # noqa: E402
from voxzarr.resample import output_length  # noqa: E402

SPACING = (1.0, 0.2, 0.2)
TARGET = 0.2  # default isotropic voxel size; --target 0.25 interpolates all three axes


def make_data(shape: tuple[int, ...]) -> np.ndarray:
    """Smooth random uint16 'cells' plus noise (compresses like real data)."""
    rng = np.random.default_rng(0)
    small = rng.random(tuple(max(2, n // 8) for n in shape)).astype(np.float32)
    big = ndi.zoom(small, [n / s for n, s in zip(shape, small.shape, strict=True)], order=1)
    big = big[tuple(slice(0, n) for n in shape)]
    noise = rng.integers(0, 200, shape, dtype=np.uint16)
    return (big * 3000).astype(np.uint16) + noise


def transform(shape: tuple[int, ...],
              target: float) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    m = np.array([target / s for s in SPACING])
    out = tuple(output_length(n, s, target) for n, s in zip(shape, SPACING, strict=True))
    return m, (m - 1) / 2, out


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, res = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t0)
    return best, res


def throughput(data: np.ndarray, target: float, threads: int, in_chunks: tuple[int, ...],
               out_chunks: tuple[int, ...], scipy_too: bool) -> dict:
    import dask_image.ndinterp as dndi

    m, off, out_shape = transform(data.shape, target)
    nvox = int(np.prod(out_shape))
    src = da.from_array(data, chunks=in_chunks)
    results = {"input_shape": list(data.shape), "output_shape": list(out_shape),
               "in_chunks": list(in_chunks), "out_chunks": list(out_chunks),
               "threads": threads}
    with dask.config.set(scheduler="threads", num_workers=threads):
        t_vz, got = timed(lambda: ndinterp.affine_transform(
            src, np.diag(m), off, out_shape, 1, out_chunks, mode="nearest").compute())
        t_di, got_di = timed(lambda: dndi.affine_transform(
            src, np.diag(m), off, out_shape, order=1, output_chunks=out_chunks,
            mode="nearest").compute())
    results["voxzarr_s"] = t_vz
    results["dask_image_s"] = t_di
    results["voxzarr_Mvox_s"] = nvox / t_vz / 1e6
    results["dask_image_Mvox_s"] = nvox / t_di / 1e6
    results["voxzarr_over_dask_image"] = t_di / t_vz
    if scipy_too:
        t_sp, ref = timed(lambda: ndi.affine_transform(data, np.diag(m), off,
                                                       output_shape=out_shape, order=1,
                                                       mode="nearest"))
        results["scipy_whole_1thread_s"] = t_sp
        results["scipy_Mvox_s"] = nvox / t_sp / 1e6
        results["voxzarr_over_scipy"] = t_sp / t_vz
        results["voxzarr_equals_scipy"] = bool(np.array_equal(got, ref))
        results["dask_image_max_abs_diff"] = int(np.abs(got_di.astype(np.int64) - ref).max())
    return results


# Peak RSS is the child's VmHWM: getrusage's ru_maxrss survives exec and would report the
# parent's high-water mark at fork time.
_CHILD = r"""
import re, sys, time
sys.path.insert(0, {src!r})
from voxzarr.cli import main
t0 = time.perf_counter()
rc = main(["isotropic", {inp!r}, {out!r}, "--voxel-size", {target!r}, "--no-progress",
           "--overwrite"])
wall = time.perf_counter() - t0
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024
print("RESULT", rc, wall, peak)
"""


def streaming(data: np.ndarray, target: float, workdir: Path, threads: int) -> dict:
    inp, out = workdir / "in.ome.zarr", workdir / "iso.ome.zarr"
    img = vz.from_array(data, "zyx", voxel_size=dict(zip("zyx", SPACING, strict=True)))
    img.vox.to_ome_zarr(inp, overwrite=True, progress=False)
    env = dict(os.environ, DASK_NUM_WORKERS=str(threads), OMP_NUM_THREADS="1")
    code = _CHILD.format(src=str(SRC), inp=str(inp), out=str(out), target=str(target))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    if proc.returncode or not line:
        raise RuntimeError(f"child failed: {proc.stderr[-2000:]}")
    _, rc, wall, peak = line[0].split()
    iso = vz.open_image(out)
    nvox = int(np.prod(iso.shape))
    return {"input_shape": list(data.shape), "output_shape": list(iso.shape),
            "output_chunks": list(iso.data.chunksize), "rc": int(rc),
            "wall_s": float(wall), "peak_rss_GiB": int(peak) / 2**30,
            "input_GiB": data.nbytes / 2**30, "output_GiB": nvox * 2 / 2**30,
            "Mvox_s": nvox / float(wall) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(128, 1024, 1024))
    ap.add_argument("--throughput-shape", type=int, nargs=3, default=None,
                    help="smaller stack for the throughput part (default: --shape)")
    ap.add_argument("--target", type=float, default=TARGET,
                    help="isotropic voxel size (default 0.2: only z is interpolated)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--chunks", type=int, default=128, help="dask chunk side, in and out")
    ap.add_argument("--no-scipy", action="store_true")
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    args = ap.parse_args()

    results: dict = {"cpus": os.cpu_count(), "threads": args.threads, "target": args.target,
                     "load_avg_start": os.getloadavg()}
    tshape = tuple(args.throughput_shape or args.shape)
    data = make_data(tshape)
    c = args.chunks
    results["throughput"] = throughput(data, args.target, args.threads, (c, c, c),
                                       (c, c, c), not args.no_scipy)
    print(json.dumps(results["throughput"], indent=2), flush=True)
    del data
    if not args.no_stream:
        data = make_data(tuple(args.shape))
        work = Path(tempfile.mkdtemp(prefix="vz-resample-bench-"))
        try:
            results["streaming"] = streaming(data, args.target, work, args.threads)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(results["streaming"], indent=2), flush=True)
    results["load_avg_end"] = os.getloadavg()
    results["self_peak_rss_GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
