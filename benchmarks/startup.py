"""Start-up time of the command line: whole processes, best of N wall (and CPU) seconds.

    python benchmarks/startup.py [--repeat 5] [--before SRC]

Times ``voxzarr --help``, ``voxzarr info STORE`` (a small NGFF 0.5 image written first) and,
for reference, ``python -c "import zarr"`` (the floor of ``voxzarr info``) and
``python -c pass``. ``--before SRC`` also times the same commands on another copy of the
sources (``SRC`` holds the ``voxzarr`` package, e.g. ``git archive HEAD src | tar -x -C
OLD`` gives ``OLD/src``), run round robin with this checkout's so load
changes on a shared machine hit both alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the console script's body, so a --before copy of the sources can run it too
_CLI = "import sys; from voxzarr.cli import main; sys.argv[0] = 'voxzarr'; sys.exit(main())"


def _timed(cmd: list[str], env: dict[str, str] | None) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", metavar="SRC", help="another copy of the sources to compare")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "img.ome.zarr")
        subprocess.run([sys.executable, "-c", (
            "import numpy as np, voxzarr as vz; vz.from_array(np.zeros((8, 64, 64), 'uint16'), "
            "dims='zyx', voxel_size={'z': 1, 'y': 0.2, 'x': 0.2})"
            f".vox.to_ome_zarr({store!r})")], check=True)
        py = [sys.executable]
        cases: dict[str, tuple[list[str], dict[str, str] | None]] = {}
        trees = [("", None)]
        if args.before:
            trees.insert(0, ("before: ", {**os.environ, "PYTHONPATH": args.before}))
            trees[1] = ("after:  ", None)
        for label, env in trees:
            cases[f"{label}voxzarr --help"] = (py + ["-c", _CLI, "--help"], env)
            cases[f"{label}voxzarr info STORE"] = (py + ["-c", _CLI, "info", store], env)
        cases["python -c 'import zarr'"] = (py + ["-c", "import zarr"], None)
        cases["python -c pass"] = (py + ["-c", "pass"], None)

        for cmd, env in cases.values():  # warm-up: bytecode caches, file system
            _timed(cmd, env)
        best = {k: (float("inf"), float("inf")) for k in cases}
        for _ in range(args.repeat):
            for name, (cmd, env) in cases.items():
                wall, cpu = _timed(cmd, env)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))

    load = os.getloadavg()[0]
    print(f"best of {args.repeat} (load average {load:.1f}, {os.cpu_count()} cores)")
    print(f"{'command':34s} {'wall s':>7s} {'cpu s':>7s}")
    for name, (wall, cpu) in best.items():
        print(f"{name:34s} {wall:7.3f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
