"""map_coordinates at scattered points: voxzarr vs dask-image, side by side in one run.

The input is a lazily generated float32 volume (``dask.array.random``: a chunk exists only
once it is read), so peak memory shows how much of the input each tool reads. Two point sets
(see benchmarks/RESULTS.md, section "map_coordinates"):

- ``corners``: two opposite corners, ``(0, 0, 0)`` and ``(n - 1, n - 1, n - 1)`` (the worst
  case for a bounding-box read: 600^3 in 200^3 chunks);
- ``random``: ``--points`` points uniform over the volume (seed 1).

and three settings, the same for both tools:

- order 1 (no prefilter needed; both tools should equal scipy),
- order 3, ``prefilter=False`` (dask-image's default; both equal scipy with prefilter=False),
- order 3, ``prefilter=True`` (scipy's and voxzarr's default; dask-image prefilters each slice
  on its own, so it is compared with scipy too and its difference reported).

Every case runs in a fresh child process (``_util.run_case``): wall time of building and
computing the result (after a warm-up call on a tiny array, so imports are not timed) and
the child's peak RSS (``VmHWM``), also minus its RSS just before the call, and how many
input chunks were computed (a chunk computed twice counts twice: dask-image's slices fuse
with the chunk's source, so it recomputes, or re-reads, a chunk for each slice of it). The
best of ``--repeat`` runs counts (the machine is shared). Each result is compared with
scipy's ``map_coordinates`` on the whole array, computed once per setting in another child.

Usage::

    python benchmarks/map_coordinates.py                      # 600^3 in 200^3, 10,000 points
    python benchmarks/map_coordinates.py --size 300 --chunk 100 --points 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import run_case, table  # noqa: E402

SETTINGS = [(1, False), (3, False), (3, True)]  # (order, prefilter)

_HEAD = """
import threading, time
import dask, dask.array as da, numpy as np
dask.config.set(scheduler="threads", num_workers={threads})
reads, lock = [0], threading.Lock()

def count(block):
    with lock:
        reads[0] += 1
    return block

img = da.random.default_rng(0).random(({n}, {n}, {n}), chunks={c}, dtype=np.float32)
img = img.map_blocks(count, dtype=np.float32)  # counts the input chunks computed ("read")
pts = np.load({pts!r})

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
"""

# one tool, one setting; warm-up on a tiny array first so that no import is timed
_TOOL = _HEAD + """
if {tool!r} == "voxzarr":
    from voxzarr.ndinterp import map_coordinates
else:
    from dask_image.ndinterp import map_coordinates
small = da.ones((8, 8, 8), chunks=4, dtype=np.float32)
map_coordinates(small, np.full((3, 2), 3.5), order={order}, prefilter={prefilter}).compute()
before = rss_mib()
walls = []
for _ in range({repeat}):
    reads[0] = 0
    t0 = time.perf_counter()
    out = map_coordinates(img, pts, order={order}, prefilter={prefilter}).compute()
    walls.append(time.perf_counter() - t0)
np.save({out!r}, np.asarray(out))
RESULT = {{"wall_s": min(walls), "rss_before_mib": before, "reads": reads[0]}}
"""

_REFERENCE = _HEAD + """
from scipy import ndimage as ndi
whole = img.compute()
for order, prefilter in {settings!r}:
    ref = ndi.map_coordinates(whole, pts, order=order, prefilter=prefilter)
    np.save({ref!r}.format(order=order, prefilter=prefilter), ref)
RESULT = {{}}
"""


def point_sets(n: int, npoints: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "corners": np.array([[0.0, n - 1.0]] * 3),
        "random": rng.uniform(0, n - 1, (3, npoints)),
    }


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(got.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=600)
    ap.add_argument("--chunk", type=int, default=200)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()

    load0 = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="vz-mapc-bench-"))
    try:
        rows = []
        for label, pts in point_sets(args.size, args.points).items():
            ppath = str(work / f"{label}.npy")
            np.save(ppath, pts)
            common = {"threads": args.threads, "n": args.size, "c": args.chunk, "pts": ppath}
            refpat = str(work / f"{label}-ref-{{order}}-{{prefilter}}.npy")
            res = run_case(_REFERENCE.format(**common, settings=SETTINGS, ref=refpat))
            if "error" in res:
                raise RuntimeError(f"scipy reference failed: {res['error']}")
            for order, prefilter in SETTINGS:
                ref = np.load(refpat.format(order=order, prefilter=prefilter))
                row: dict = {"points": f"{label} ({pts.shape[1]})", "order": order,
                             "prefilter": prefilter}
                for tool in ("voxzarr", "dask_image"):
                    out = str(work / f"{label}-{tool}-{order}-{prefilter}.npy")
                    res = run_case(_TOOL.format(**common, tool=tool, order=order,
                                                prefilter=prefilter, out=out, repeat=args.repeat))
                    if "error" in res:
                        row[f"{tool} s"] = res["error"]
                        continue
                    row[f"{tool} s"] = res["wall_s"]
                    row[f"{tool} peak MiB"] = res["peak_rss_mib"]
                    row[f"{tool} over start MiB"] = res["peak_rss_mib"] - res["rss_before_mib"]
                    row[f"{tool} err vs scipy"] = rel_err(np.load(out), ref)
                    row[f"{tool} chunk reads"] = res["reads"]
                if isinstance(row.get("voxzarr s"), float) and isinstance(row.get("dask_image s"),
                                                                          float):
                    row["voxzarr speed-up"] = row["dask_image s"] / row["voxzarr s"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cols = ["points", "order", "prefilter", "voxzarr s", "dask_image s", "voxzarr speed-up",
            "voxzarr peak MiB", "dask_image peak MiB", "voxzarr over start MiB",
            "dask_image over start MiB", "voxzarr chunk reads", "dask_image chunk reads",
            "voxzarr err vs scipy", "dask_image err vs scipy"]
    print(f"\n{args.size}^3 float32 in {args.chunk}^3 chunks, {args.threads} dask threads, "
          f"best of {args.repeat}, load average at start {load0:.1f}, at end "
          f"{os.getloadavg()[0]:.1f}\n")
    print(table(rows, cols))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
