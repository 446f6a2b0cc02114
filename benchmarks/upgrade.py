"""Throughput of ``voxzarr upgrade`` (NGFF 0.4 / zarr v2 -> 0.5 / zarr v3, sharded).

One run, side by side on the same 0.4 store:

* ``copytree``: ``shutil.copytree`` of the store (the floor: moving the bytes once);
* ``voxzarr upgrade``: the default path, encoded chunks copied into shards untouched, result
  verified (through the API, and through the command line, whose Python start-up and imports
  are timed alone as well);
* ``voxzarr upgrade --reencode``: every chunk decoded and re-encoded (blosc-zstd);
* ``ngff-zarr``: ``from_ngff_zarr`` + ``to_ngff_zarr(version="0.5", chunks_per_shard=...)``,
  a peer that rewrites through dask (skipped when ngff-zarr is not installed).

Throughput is uncompressed image bytes per second of wall time; ratios are against copytree.
Every run starts from a warm page cache (the store was just written), so this measures CPU
and write cost, not a cold disk.

With ``--tiff`` it also converts ImageJ TIFF stacks of the same shape and of four times its
depth (each in a fresh process) and reports time and peak resident memory.

Usage::

    python benchmarks/upgrade.py [--shape 128,1024,1024] [--repeat 2] [--tiff]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import voxzarr as vz


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _make_store(path: Path, shape: tuple[int, ...]) -> None:
    """A 0.4 store of noisy uint16 (a blurred random field plus noise: compresses ~2x)."""
    rng = np.random.default_rng(0)
    base = rng.integers(100, 200, size=shape, dtype=np.uint16)
    base += (np.arange(shape[-1], dtype=np.uint16) % 64)[None, None, :]
    img = vz.from_array(base, "zyx", voxel_size={"z": 1.0, "y": 0.2, "x": 0.2})
    vz.to_ome_zarr(img, path, version="0.4", progress=False)


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# Peak memory from VmHWM (Linux): ru_maxrss would also count what the forking parent held.
_CONVERT = """
import sys, time, voxzarr as vz
t = time.perf_counter()
vz.convert(sys.argv[1], sys.argv[2], progress=False)
dt = time.perf_counter() - t
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(dt, int(hwm.split()[1]) / 1024)
"""


def _tiff_convert(work: Path, shape: tuple[int, ...]) -> None:
    """Convert ImageJ TIFFs of ``shape`` and of 4x its depth, each in a fresh process:
    the peak memory should not grow with the file."""
    import tifffile

    print(f"\n{'convert ImageJ TIFF -> 0.5':30s} {'MiB':>6s} {'time s':>8s} {'MB/s':>8s} "
          f"{'peak RSS MiB':>13s}")
    rng = np.random.default_rng(1)
    for depth in (shape[0], 4 * shape[0]):
        path = work / f"stack-{depth}.tif"
        stack = rng.integers(0, 4000, (depth, *shape[1:]), np.uint16)
        tifffile.imwrite(path, stack, imagej=True, resolution=(5.0, 5.0),
                         metadata={"axes": "ZYX", "spacing": 1.0, "unit": "um"})
        del stack
        out = subprocess.run([sys.executable, "-c", _CONVERT, str(path),
                              str(work / f"stack-{depth}.zarr")], check=True,
                             capture_output=True, text=True).stdout.split()
        dt, rss = float(out[0]), float(out[1])
        mib = depth * int(np.prod(shape[1:])) * 2 / 2**20
        print(f"{str((depth, *shape[1:])):30s} {mib:6.0f} {dt:8.2f} {mib * 2**20 / 1e6 / dt:8.0f} "
              f"{rss:13.0f}")
        path.unlink()
        shutil.rmtree(work / f"stack-{depth}.zarr", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="128,1024,1024")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per method")
    ap.add_argument("--tiff", action="store_true",
                    help="also time TIFF conversion and its peak memory at 1x and 4x depth")
    args = ap.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    nbytes = int(np.prod(shape)) * 2
    with tempfile.TemporaryDirectory(prefix="vz-bench-upgrade-") as tmp:
        work = Path(tmp)
        src = work / "in.ome.zarr"
        t_make = _time(lambda: _make_store(src, shape))
        print(f"0.4 store {shape} uint16: {nbytes / 2**20:.0f} MiB raw, "
              f"{_du(src) / 2**20:.0f} MiB on disk, written in {t_make:.1f} s")

        def run_copytree(dst: Path) -> None:
            shutil.copytree(src, dst)

        def run_upgrade(dst: Path) -> None:
            vz.upgrade(src, dst, progress=False)

        def run_reencode(dst: Path) -> None:
            vz.upgrade(src, dst, progress=False, reencode=True)

        def run_cli(dst: Path) -> None:
            subprocess.run([sys.executable, "-m", "voxzarr.cli", "upgrade", str(src),
                            str(dst), "--no-progress"], check=True, stdout=subprocess.DEVNULL)

        def run_startup(dst: Path) -> None:
            subprocess.run([sys.executable, "-m", "voxzarr.cli", "upgrade", "--help"],
                           check=True, stdout=subprocess.DEVNULL)

        methods = {"copytree": run_copytree, "voxzarr upgrade (API)": run_upgrade,
                   "voxzarr upgrade (CLI)": run_cli,
                   "  CLI start-up alone (--help)": run_startup,
                   "voxzarr upgrade --reencode": run_reencode}
        try:
            import ngff_zarr

            def run_ngff_zarr(dst: Path) -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ms = ngff_zarr.from_ngff_zarr(str(src))
                    ngff_zarr.to_ngff_zarr(str(dst), ms, version="0.5",
                                           chunks_per_shard=(1, 2, 2))

            methods["ngff-zarr 0.5 rewrite"] = run_ngff_zarr
        except ImportError:
            pass

        results = {}
        for name, fn in methods.items():
            best = float("inf")
            for i in range(args.repeat):
                dst = work / f"out-{abs(hash(name))}-{i}"
                best = min(best, _time(lambda fn=fn, dst=dst: fn(dst)))
                if name.startswith("voxzarr upgrade (API)") and i == 0:
                    got = vz.open_image(dst)
                    assert got.shape == shape
                    out_size = _du(dst)
                shutil.rmtree(dst, ignore_errors=True)
            results[name] = best
        floor = results["copytree"]
        print(f"\n{'method':30s} {'time s':>8s} {'MB/s':>8s} {'vs copytree':>12s}")
        for name, t in results.items():
            print(f"{name:30s} {t:8.2f} {nbytes / 1e6 / t:8.0f} {t / floor:11.2f}x")
        print(f"\nupgraded store on disk: {out_size / 2**20:.0f} MiB")
        if args.tiff:
            _tiff_convert(work, shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
