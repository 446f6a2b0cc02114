"""CPU resampling across dask thread counts: voxzarr vs dask-image, one table per run.

For each target voxel size and each thread count: output voxels per second of voxzarr
``ndinterp.affine_transform`` (what ``img.vox.to_isotropic`` runs) and of dask-image
``affine_transform`` given ``np.diag(m)``, same input (uint16, voxel size (1, 0.2, 0.2)),
same chunks, same dask threads (best of ``--repeat``). ``--src`` times another voxzarr tree
(e.g. an older commit's ``src``) in this process instead of the repository's; ``--sample``
prints where voxzarr's worker threads are (``sys._current_frames`` every 0.5 ms) at that
thread count, to show a serialising Python loop. A digest of each voxzarr result lets two
runs be compared bit for bit.

Usage::

    python benchmarks/resample_threads.py --shape 64 512 512 --threads 1 2 4 8 16
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib
import json
import os
import sys
import threading
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--shape", type=int, nargs=3, default=(64, 512, 512))
ap.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8, 16])
ap.add_argument("--targets", type=float, nargs="+", default=[0.2, 0.25])
ap.add_argument("--chunks", type=int, default=128)
ap.add_argument("--repeat", type=int, default=2)
ap.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")

ap.add_argument("--label", default="voxzarr")
ap.add_argument("--no-peer", action="store_true", help="skip dask-image")
ap.add_argument("--sample", type=int, default=0, help="sample frames at this thread count")
ap.add_argument("--json", type=Path, default=None)
args = ap.parse_args()
args.src = args.src.resolve()
sys.path.insert(0, str(args.src))
sys.path.insert(1, str(Path(__file__).resolve().parent))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402

from voxzarr import ndinterp  # noqa: E402

# after voxzarr: importing resample.py puts the repository's src first on sys.path
_bench = importlib.import_module("resample")
make_data, transform = _bench.make_data, _bench.transform


def best(fn, repeat):
    ts, res = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), res


def sample_frames(fn, src_dir):
    """Run ``fn`` while counting where the other threads are (innermost voxzarr frame)."""
    counts, stop, me = collections.Counter(), threading.Event(), threading.get_ident()
    main = threading.main_thread().ident

    def loop():
        while not stop.is_set():
            for tid, frame in sys._current_frames().items():
                if tid in (me, main, sampler.ident):
                    continue
                f, where = frame, None
                while f is not None:
                    if f.f_code.co_filename.startswith(str(src_dir)):
                        where = f"{f.f_code.co_name}:{f.f_lineno}"
                        break
                    f = f.f_back
                counts[where or f"(idle) {frame.f_code.co_name}"] += 1
            time.sleep(0.0005)

    sampler = threading.Thread(target=loop, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        stop.set()
        sampler.join()
    total = sum(counts.values()) or 1
    return [(k, round(100 * v / total, 1)) for k, v in counts.most_common(8)]


def main() -> None:
    if not args.no_peer:
        import dask_image.ndinterp as dndi
    try:
        from voxzarr import _kernels
        jit = {"available": _kernels.available(),
               "nogil": sorted({name for name in dir(_kernels)
                                if hasattr(getattr(_kernels, name), "targetoptions")
                                and getattr(_kernels, name).targetoptions.get("nogil")})}
    except ImportError:
        jit = None
    out: dict = {"label": args.label, "src": str(args.src), "cpus": os.cpu_count(),
                 "shape": list(args.shape), "jit": jit, "rows": []}
    print(json.dumps({k: out[k] for k in ("label", "cpus", "shape", "jit")}), flush=True)
    data = make_data(tuple(args.shape))
    c = (args.chunks,) * 3
    for target in args.targets:
        m, off, oshape = transform(data.shape, target)
        nvox = int(np.prod(oshape))
        src = da.from_array(data, chunks=c)
        vz = ndinterp.affine_transform(src, np.diag(m), off, oshape, 1, c, mode="nearest")
        with dask.config.set(scheduler="threads", num_workers=2):
            digest = hashlib.sha1(vz.compute().tobytes()).hexdigest()[:16]  # also warms JIT
        for thr in args.threads:
            row = {"target": target, "threads": thr, "output": list(oshape), "digest": digest}
            with dask.config.set(scheduler="threads", num_workers=thr):
                t, _ = best(vz.compute, args.repeat)
                row["vz_Mvox_s"] = round(nvox / t / 1e6, 1)
                if not args.no_peer:
                    di = dndi.affine_transform(src, np.diag(m), off, oshape, order=1,
                                               output_chunks=c, mode="nearest")
                    td, _ = best(di.compute, args.repeat if thr >= 4 else 1)
                    row["dask_image_Mvox_s"] = round(nvox / td / 1e6, 1)
                    row["ratio"] = round(td / t, 2)
                if thr == args.sample:
                    row["where"] = sample_frames(vz.compute, args.src)
            out["rows"].append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
