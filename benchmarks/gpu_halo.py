"""GPU filters: voxels per second from the halo store vs whole-array cupyx.scipy.ndimage.

Run on a machine with CuPy and an NVIDIA GPU. On one uint16 volume (default 512^3) stored in
cubic chunks with a halo deep enough for the largest sigma, for each Gaussian sigma:

- ``cupyx whole, on GPU``: ``cupyx.scipy.ndimage.gaussian_filter`` on the whole array
  already in GPU memory (kernel only, the ceiling);
- ``cupyx whole, from store``: read the plain store, copy to the GPU, filter, copy back;
- ``voxzarr halo, device=gpu``: ``img.vox.filter(..., device="gpu")`` from the halo store,
  one read and one task per chunk, to host memory (dask threads);
- ``voxzarr halo blocks, on GPU``: the same per-block kernels on blocks already on the GPU
  (no reads, no transfers): what the chunked GPU compute itself costs;
- ``voxzarr halo, device=cpu``: the same pass with scipy, for scale.

``exact``: the voxzarr GPU result is identical to the whole-array cupyx result, the CPU one
to whole-array scipy. Usage::

    python benchmarks/gpu_halo.py [--size 512] [--chunks 128,256] [--sigmas 2,5]
                                  [--json out.json] [--tests]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

sys.path.insert(0, str(Path(__file__).parent))
from _util import table  # noqa: E402


def make_volume(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = ndi.zoom(rng.random((n // 16,) * 3, dtype=np.float32), 16, order=1)
    noise = rng.normal(0, 40, (n,) * 3).astype(np.float32)
    return np.clip(small * 3000 + 200 + noise, 0, 4095).astype(np.uint16)


def timed(fn, repeat: int = 2) -> tuple[float, object]:
    import cupy

    best, out = 1e30, None
    for _ in range(repeat):
        cupy.cuda.Device().synchronize()
        t0 = time.perf_counter()
        out = fn()
        cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench(n: int, chunk_list: list[int], sigmas: list[float], repeat: int) -> list[dict]:
    import cupy
    import cupyx.scipy.ndimage as cndi
    import zarr

    import voxzarr as vz
    from voxzarr.filters import _Kernel, filter_radius, prepare_filter
    from voxzarr.halo import write_halo

    vol = make_volume(n)
    depth = max(filter_radius("gaussian", "zyx", sigma=s)[0] for s in sigmas)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="voxzarr-gpu-halo-"))
    for c in chunk_list:
        path = tmp / f"c{c}.ome.zarr"
        vz.from_array(vol, "zyx").vox.to_ome_zarr(path, chunks=(c,) * 3, progress=False)
        t0 = time.perf_counter()
        write_halo(None, path, depth=depth, progress=False)
        build = time.perf_counter() - t0
        h = vz.open_halo(path)
        for s in sigmas:
            x = cupy.asarray(vol)
            cndi.gaussian_filter(x, s)  # compile
            t_k, ref = timed(lambda x=x, s=s: cndi.gaussian_filter(x, s), repeat)
            ref = ref.get()

            def from_store(s=s, path=path):
                arr = zarr.open_array(path / "0", mode="r")[:]
                return cndi.gaussian_filter(cupy.asarray(arr), s).get()

            t_s, _ = timed(from_store, repeat)
            img = vz.open_image(path)
            run = lambda s=s, img=img: img.vox.filter(  # noqa: E731
                "gaussian", sigma=s, device="gpu", halo="require").data.compute()
            run()  # compile every block shape
            t_h, got = timed(run, repeat)
            # per-block kernels on device-resident blocks
            chain = prepare_filter("gaussian", "zyx", sigma=s)
            kern = _Kernel(chain, "reflect", 0.0, "gpu", 0)
            r = chain.radius
            blocks = []
            for index in h.layout.blocks():
                b = h.block(index)
                crop = h.layout.crop(index, r)
                core = h.layout.with_depth(r).core_in_valid(index)
                blocks.append((cupy.asarray(np.ascontiguousarray(b.data[crop])), core))
            for blk, core in blocks:
                kern.run_core(blk, core)
            t_b, _ = timed(lambda blocks=blocks, kern=kern: [kern.run_core(b, c)
                                                             for b, c in blocks], repeat)
            t_c, cpu = timed(lambda s=s, img=img: img.vox.filter(
                "gaussian", sigma=s, device="cpu", halo="require").data.compute(), 1)
            exact = {"voxzarr halo, device=gpu": bool(np.array_equal(got, ref)),
                     "voxzarr halo, device=cpu": bool(np.array_equal(
                         cpu, ndi.gaussian_filter(vol, s)))}
            for name, t in (("cupyx whole, on GPU", t_k), ("cupyx whole, from store", t_s),
                            ("voxzarr halo, device=gpu", t_h),
                            ("voxzarr halo blocks, on GPU", t_b),
                            ("voxzarr halo, device=cpu", t_c)):
                rows.append({"chunk": c, "sigma": s, "case": name, "seconds": t,
                             "Gvox/s": n**3 / t / 1e9, "exact": exact.get(name, ""),
                             "halo_build_s": build})
            del x
    return rows


def run_tests() -> int:
    """Run tests/filters/test_gpu_filters.py with pytest (exit status; -1 without pytest)."""
    try:
        import pytest
    except ImportError:
        print("pytest is not installed here: GPU tests not run")
        return -1

    root = Path(__file__).resolve().parents[1]
    return pytest.main(["-q", "-p", "no:cacheprovider",
                        str(root / "tests" / "filters" / "test_gpu_filters.py")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--chunks", default="128,256")
    ap.add_argument("--sigmas", default="2,5")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--tests", action="store_true", help="run the GPU tests first")
    args = ap.parse_args()
    if args.tests:
        print("gpu tests exit status:", run_tests(), flush=True)
    import cupy

    dev = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    rows = bench(args.size, [int(c) for c in args.chunks.split(",")],
                 [float(s) for s in args.sigmas.split(",")], args.repeat)
    print(f"## GPU halo benchmark: {args.size}^3 uint16 on {dev}, CuPy {cupy.__version__}\n")
    print(table(rows, ["chunk", "sigma", "case", "seconds", "Gvox/s", "exact",
                       "halo_build_s"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": dev, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
