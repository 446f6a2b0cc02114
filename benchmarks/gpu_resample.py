"""GPU resampling benchmark for the device machine (CuPy), side by side in one run.

A (128, 1024, 1024) stack at voxel size (1.0, 0.2, 0.2) made isotropic at 0.2 (order 1,
mode nearest; output (640, 1024, 1024)), float32 and uint16, output voxels per second:

- in GPU memory: voxzarr's fused separable kernel alone (what each task runs; also the
  previous reference kernel, which it must equal bit for bit), the same
  through the dask graph (one and four output chunks, so including Python and graph
  overhead), and whole-array ``cupyx.scipy.ndimage.affine_transform`` (2-D ``np.diag``
  matrix, and the 1-D zoom/shift form), against the memory-bandwidth floor: one read of
  the input and one write of the output at the device-to-device copy bandwidth measured
  here. Also a target of 0.25, where all three axes are interpolated;
- from a zarr store: ``vz.open_image(...).vox.to_isotropic(device="gpu")`` computed to host
  memory (read, decompress, transfer, resample, transfer back), and written to OME-Zarr.

Usage (on the device machine)::

    python3 benchmarks/gpu_resample.py --json $OUT/gpu_resample.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import cupy  # noqa: E402
import cupyx.scipy.ndimage as cndi  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr import ndinterp  # noqa: E402
from voxzarr.resample import output_length  # noqa: E402

SPACING = (1.0, 0.2, 0.2)
TARGET = 0.2


def gpu_time(fn, repeat: int = 5) -> tuple[float, object]:
    """Best wall time of ``fn`` with the device synchronised before and after.

    The memory pool is kept between runs (the steady state of a streaming job).
    """
    res = fn()  # warm-up: kernel compilation, memory pool
    cupy.cuda.Device().synchronize()
    best = float("inf")
    for _ in range(repeat):
        del res
        t0 = time.perf_counter()
        res = fn()
        cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, res


def copy_bandwidth(nbytes: int = 2 << 30) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write counted)."""
    a = cupy.empty(nbytes, dtype=np.uint8)
    b = cupy.empty_like(a)
    t, _ = gpu_time(lambda: b.__setitem__(Ellipsis, a), repeat=5)
    return 2 * nbytes / t


def make_data(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4000, shape, dtype=np.uint16)
    return base.astype(dtype)


def plan(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    m = np.array([TARGET / s for s in SPACING])
    out = tuple(output_length(n, s, TARGET) for n, s in zip(shape, SPACING, strict=True))
    return m, (m - 1) / 2, out


def in_gpu(host: np.ndarray, bw: float, target: float = TARGET) -> dict:
    """Kernel alone, the dask path (one and four output chunks) and whole-array cupyx."""
    m = np.array([target / s for s in SPACING])
    off = (m - 1) / 2
    out_shape = tuple(output_length(n, s, target)
                      for n, s in zip(host.shape, SPACING, strict=True))
    nvox = int(np.prod(out_shape))
    dev = cupy.asarray(host)
    item = host.dtype.itemsize
    floor_s = (dev.nbytes + nvox * item) / bw
    res = {"dtype": str(host.dtype), "target": target, "input_shape": list(host.shape),
           "output_shape": list(out_shape), "floor_Gvox_s": nvox / floor_s / 1e9}
    # the fused kernel on the whole array: what one task runs on its region
    tables = []
    for ax, n in enumerate(host.shape):
        if m[ax] == 1.0:
            tables.append(None)
            continue
        idx, w = ndinterp.taps_1d(np.arange(out_shape[ax]) * m[ax] + off[ax], n, 1, "nearest")
        tables.append((idx, w))
    cdtype = np.dtype(np.float32)
    t_k, got = gpu_time(lambda: ndinterp._gpu_separable(dev, tables, 0.0, host.dtype,
                                                           cdtype))
    res["kernel_Gvox_s"] = nvox / t_k / 1e9
    res["kernel_fraction_of_floor"] = res["kernel_Gvox_s"] / res["floor_Gvox_s"]
    # the previous kernel (one block per output row), kept as the bit-for-bit reference
    t_r, ref_k = gpu_time(lambda: ndinterp._gpu_separable(dev, tables, 0.0, host.dtype,
                                                             cdtype, reference=True))
    res["reference_kernel_Gvox_s"] = nvox / t_r / 1e9
    res["reference_fraction_of_floor"] = res["reference_kernel_Gvox_s"] / res["floor_Gvox_s"]
    res["kernel_equals_reference"] = bool(cupy.array_equal(got, ref_k))
    del ref_k
    arr = da.from_array(dev, chunks=dev.shape, asarray=False)
    for label, chunks in (("dask_1chunk", out_shape), ("dask_4chunks",
                                                      (out_shape[0] // 4,) + out_shape[1:])):
        with dask.config.set(scheduler="sync"):
            t_vz, _ = gpu_time(lambda c=chunks: ndinterp.affine_transform(
                arr, np.diag(m), off, out_shape, 1, c, mode="nearest").compute())
        res[f"{label}_Gvox_s"] = nvox / t_vz / 1e9
    mat2 = cupy.asarray(np.diag(m))
    t_cx, ref = gpu_time(lambda: cndi.affine_transform(
        dev, mat2, tuple(off), output_shape=out_shape, order=1, mode="nearest"))
    res["cupyx_diag2d_Gvox_s"] = nvox / t_cx / 1e9
    res["kernel_over_cupyx"] = t_cx / t_k
    diff = cupy.abs(got.astype(cupy.float64) - ref.astype(cupy.float64)).max()
    res["max_abs_diff_vs_cupyx"] = float(diff)
    del ref
    t_cz, _ = gpu_time(lambda: cndi.affine_transform(
        dev, cupy.asarray(m), tuple(off), output_shape=out_shape, order=1, mode="nearest"))
    res["cupyx_zoomshift1d_Gvox_s"] = nvox / t_cz / 1e9
    # CPU reference on a slab: the GPU gives the CPU result within float32 rounding
    nz = 16
    oz = int((nz - 2) / m[0])
    cpu = ndinterp.affine_transform(da.from_array(host[:nz], chunks=(nz, 256, 256)),
                                    np.diag(m), off, (oz,) + out_shape[1:], 1,
                                    (oz, 256, 256), mode="nearest").compute()
    res["max_abs_diff_vs_cpu_slab"] = float(np.abs(got[:oz].get().astype(np.float64)
                                                   - cpu).max())
    return res


def from_zarr(host: np.ndarray, work: Path, chunks: tuple[int, ...],
              out_chunks: tuple[int, ...]) -> dict:
    src = work / f"in-{host.dtype}.ome.zarr"
    img = vz.from_array(host, "zyx", voxel_size=dict(zip("zyx", SPACING, strict=True)))
    img.vox.to_ome_zarr(src, chunks=chunks, overwrite=True, progress=False)
    res = {"dtype": str(host.dtype), "stored_chunks": list(chunks),
           "out_chunks": list(out_chunks)}
    with dask.config.set(scheduler="threads", num_workers=os.cpu_count()):
        opened = vz.open_image(src)
        iso = opened.vox.to_isotropic(device="gpu", chunks=out_chunks)
        nvox = int(np.prod(iso.shape))
        t0 = time.perf_counter()
        out = iso.data.compute()
        t_mem = time.perf_counter() - t0
        res["to_host_Gvox_s"] = nvox / t_mem / 1e9
        cpu = opened[:16].vox.to_isotropic(device="cpu").values
        res["max_abs_diff_vs_cpu_slab"] = float(np.abs(out[:72].astype(np.float64)
                                                       - cpu[:72]).max())
        del out
        t0 = time.perf_counter()
        iso.vox.to_ome_zarr(work / "iso.ome.zarr", chunks=out_chunks, overwrite=True,
                            progress=False)
        t_zarr = time.perf_counter() - t0
        res["zarr_to_zarr_Gvox_s"] = nvox / t_zarr / 1e9
        res["zarr_to_zarr_s"] = t_zarr
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(128, 1024, 1024))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-zarr", action="store_true")
    args = ap.parse_args()
    shape = tuple(args.shape)
    props = cupy.cuda.runtime.getDeviceProperties(0)
    results: dict = {"device": props["name"].decode(), "cupy": cupy.__version__}
    bw = copy_bandwidth()
    results["copy_bandwidth_GB_s"] = bw / 1e9
    print(json.dumps(results), flush=True)
    results["in_gpu"] = []
    for dtype in (np.float32, np.uint16):
        for target in (TARGET, 0.25):  # z only; all three axes (z up, y and x down)
            r = in_gpu(make_data(shape, np.dtype(dtype)), bw, target)
            cupy.get_default_memory_pool().free_all_blocks()
            results["in_gpu"].append(r)
            print(json.dumps(r), flush=True)
    if not args.no_zarr:
        results["from_zarr"] = []
        with tempfile.TemporaryDirectory(prefix="vz-gpu-bench-") as tmp:
            for dtype in (np.uint16, np.float32):
                r = from_zarr(make_data(shape, np.dtype(dtype)), Path(tmp), (64, 256, 256),
                              (128, 512, 512))
                results["from_zarr"].append(r)
                print(json.dumps(r), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
