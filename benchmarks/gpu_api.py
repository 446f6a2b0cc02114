"""GPU public-API overhead: ``img.vox.filter`` / ``img.vox.to_isotropic`` on data already in
GPU memory (CuPy-backed dask arrays) against the kernels they run, with and without the GPU
block policy (``voxzarr._xp.gpu_block_chunks``: merge CuPy chunks into a few large blocks;
switched off with ``VOXZARR_GPU_BLOCKS=0``).

- filter: 512^3 float32, ``gaussian`` sigma=2 (mode reflect), chunks 128^3 and one 512^3
  chunk, against ``cupyx.scipy.ndimage.gaussian_filter`` on the whole array, and the Gaussian
  passes the public call runs (``voxzarr._gpu_gauss.gaussian_kept``) alone;
- to_isotropic: (128, 512, 512) float32 at voxel size (1, 0.2, 0.2) -> (640, 512, 512)
  (order 1, mode nearest), chunks 128^3 and one chunk, against voxzarr's fused kernel
  (``ndinterp._gpu_separable`` on the whole array) and whole-array cupyx
  ``affine_transform``.

Each public-API time covers the call (graph building) and ``.data.compute()`` on the default
threaded scheduler. Median of 10 after a warm-up, the device synchronised around each run.

Usage (device machine): ``python3 benchmarks/gpu_api.py``
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import cupy  # noqa: E402
import cupyx.scipy.ndimage as cndi  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr import _gpu_gauss, _xp, ndinterp  # noqa: E402

REPEAT = 10


def sync() -> None:
    cupy.cuda.Stream.null.synchronize()


def timed(fn, repeat: int = REPEAT) -> tuple[float, object]:
    """Median wall time (s) of ``fn`` after one warm-up run."""
    res = fn()
    sync()
    times = []
    for _ in range(repeat):
        del res
        sync()
        t0 = time.perf_counter()
        res = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), res


def policy(on: bool) -> None:
    os.environ[_xp.GPU_BLOCKS_ENV] = "1" if on else "0"


def main() -> None:
    rows = []
    rng = np.random.default_rng(0)
    # ------------------------------------------------------------------ gaussian filter
    host = (rng.random((512, 512, 512), dtype=np.float32) * 4000).astype(np.float32)
    dev = cupy.asarray(host)
    t_ref, ref = timed(lambda: cndi.gaussian_filter(dev, 2.0, mode="reflect"))
    rows.append(("gaussian s=2, 512^3", "cupyx gaussian_filter, whole array", "-", t_ref,
                 1.0, "reference"))
    whole = (slice(None),) * 3
    t_own, own = timed(lambda: _gpu_gauss.gaussian_kept(dev, (2.0,) * 3, (0,) * 3, "reflect",
                                                        0.0, 4.0, None, whole))
    rows.append(("gaussian s=2, 512^3", "voxzarr Gaussian passes (_gpu_gauss), whole array",
                 "-", t_own, t_own / t_ref,
                 "bit-identical" if bool(cupy.array_equal(own, ref)) else "DIFFERS"))
    del own
    t_one, own = timed(lambda: _gpu_gauss.gaussian_kept(dev, (2.0,) * 3, (0,) * 3, "reflect",
                                                        0.0, 4.0, None, whole, rows=1))
    rows.append(("gaussian s=2, 512^3", "the same, one output row per thread", "-", t_one,
                 t_one / t_ref,
                 "bit-identical" if bool(cupy.array_equal(own, ref)) else "DIFFERS"))
    del own
    for chunks in (128, 512):
        img = vz.from_array(da.from_array(dev, chunks=chunks, asarray=False), "zyx")
        for on in (False, True):
            policy(on)
            fn = lambda img=img: img.vox.filter("gaussian", sigma=2.0,  # noqa: E731
                                                device="gpu").data.compute()
            t, out = timed(fn)
            t_build, _ = timed(lambda img=img: img.vox.filter("gaussian", sigma=2.0,
                                                              device="gpu"))
            same = bool(cupy.array_equal(out, ref))
            rows.append(("gaussian s=2, 512^3", f"vox.filter, chunks {chunks}^3",
                         "on" if on else "off", t, t / t_ref,
                         ("bit-identical" if same else "DIFFERS")
                         + f"; graph build {t_build * 1e3:.2f} ms"))
            del out
    # where the merge's time goes: dask's rechunk of the CuPy chunks into one block alone
    small = da.from_array(dev, chunks=128, asarray=False)
    t_rc, _ = timed(lambda: small.rechunk(dev.shape).compute())
    rows.append(("gaussian s=2, 512^3", "dask rechunk 128^3 -> one block only", "-", t_rc,
                 t_rc / t_ref, "part of 'on' with 128^3 chunks"))
    del dev, ref
    cupy.get_default_memory_pool().free_all_blocks()
    # ------------------------------------------------------------------ to_isotropic
    spacing = (1.0, 0.2, 0.2)
    host = (rng.random((128, 512, 512), dtype=np.float32) * 4000).astype(np.float32)
    dev = cupy.asarray(host)
    m = np.array([0.2 / s for s in spacing])
    off = (m - 1) / 2
    out_shape = (640, 512, 512)
    tables = [None if m[ax] == 1.0 else ndinterp.taps_1d(
        np.arange(out_shape[ax]) * m[ax] + off[ax], n, 1, "nearest")
        for ax, n in enumerate(host.shape)]
    t_k, ref = timed(lambda: ndinterp._gpu_separable(dev, tables, 0.0, host.dtype,
                                                       np.dtype(np.float32)))
    rows.append(("to_isotropic (128,512,512)->(640,512,512)", "voxzarr kernel, whole array",
                 "-", t_k, 1.0, "reference"))
    t_cx, _ = timed(lambda: cndi.affine_transform(dev, cupy.asarray(np.diag(m)), tuple(off),
                                                  output_shape=out_shape, order=1,
                                                  mode="nearest"))
    rows.append(("to_isotropic (128,512,512)->(640,512,512)", "cupyx affine_transform",
                 "-", t_cx, t_cx / t_k, ""))
    # dask's finalize copies a one-chunk result (dask.array.core.finalize): a floor under
    # any ``.data.compute()``, whatever the call costs
    t_copy, _ = timed(lambda: ref.copy())
    rows.append(("to_isotropic (128,512,512)->(640,512,512)",
                 "copy of the result alone (dask's finalize of one chunk)", "-", t_copy,
                 t_copy / t_k, "part of every .data.compute() row below"))
    for chunks in ((128, 128, 128), (128, 512, 512)):
        img = vz.from_array(da.from_array(dev, chunks=chunks, asarray=False), "zyx",
                            voxel_size=dict(zip("zyx", spacing, strict=True)))
        for on in (False, True):
            policy(on)
            fn = lambda img=img: img.vox.to_isotropic(device="gpu").data.compute()  # noqa
            t, out = timed(fn)
            t_build, _ = timed(lambda img=img: img.vox.to_isotropic(device="gpu"))
            diff = float(cupy.abs(out - ref).max())
            rows.append(("to_isotropic (128,512,512)->(640,512,512)",
                         f"vox.to_isotropic, chunks {chunks}", "on" if on else "off", t,
                         t / t_k, f"max|diff| vs kernel {diff:.3g}; graph build "
                         f"{t_build * 1e3:.2f} ms"))
            del out
    policy(True)
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"device: {props['name'].decode()}, CuPy {cupy.__version__}, "
          f"free GPU memory {_xp.gpu_free_bytes() / 2**30:.1f} GiB")
    print("| case | what | policy | median ms | x reference | note |")
    print("|---|---|---|---|---|---|")
    for case, what, pol, t, ratio, note in rows:
        print(f"| {case} | {what} | {pol} | {t * 1e3:.2f} | {ratio:.2f}x | {note} |")
    if "--profile" in sys.argv:  # where the rest of the to_isotropic time goes
        import cProfile
        import pstats

        img = vz.from_array(da.from_array(dev, chunks=(128, 128, 128), asarray=False), "zyx",
                            voxel_size=dict(zip("zyx", spacing, strict=True)))
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            img.vox.to_isotropic(device="gpu").data.compute()
            sync()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
