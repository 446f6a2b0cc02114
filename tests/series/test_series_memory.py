"""Peak memory of a conversion stays under the budget plus the stated fixed overhead.

Measured in a fresh subprocess on a volume four times the budget: the kernel's high-water
mark of resident memory (``VmHWM``) is reset after imports and warm-up, and read after the
conversion. ``spec/series.md`` states the overhead: 32 MiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import voxzarr as vz

ROOT = Path(__file__).resolve().parents[2]
OVERHEAD = 32 * 2**20
BUDGET = 8_000_000

pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                                reason="needs Linux /proc to reset and read peak RSS")

_CHILD = textwrap.dedent("""
    import gc, json, sys
    import numpy as np, zarr
    import voxzarr as vz
    from voxzarr.series import open_series, to_images, to_series

    src, out, budget, direction, staging = sys.argv[1:6]
    staging = {"auto": "auto", "on": True, "off": False}[staging]

    def rss(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    # warm up every code path on a tiny array, so imports and caches are in the baseline
    tiny = vz.from_array(np.zeros((4, 8, 8), "uint16"), dims="tyx")
    to_images(open_series(to_series(tiny, zarr.storage.MemoryStore(), memory="1MB")),
              zarr.storage.MemoryStore(), memory="1MB")
    img = open_series(src) if direction == "to_images" else vz.open_image(src)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current RSS
    base = rss("VmRSS")
    fn = to_images if direction == "to_images" else to_series
    fn(img, out, memory=int(budget), staging=staging, progress=False)
    print(json.dumps({"base": base, "peak": rss("VmHWM")}))
""")


def _peak(tmp_path: Path, src: Path, out: Path, direction: str, staging: str) -> int:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(script), str(src), str(out), str(BUDGET),
                           direction, staging], env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    return m["peak"] - m["base"]


def test_peak_memory_under_budget(tmp_path):
    shape = (16, 1024, 1024)  # 32 MiB of uint16: four times the budget
    arr = np.random.default_rng(0).integers(0, 4096, shape, dtype=np.uint16)
    src = tmp_path / "src.ome.zarr"
    vz.from_array(arr, dims="tyx").vox.to_ome_zarr(src, chunks=(1, 512, 512), compressor="lz4")
    del arr
    ser = tmp_path / "series.zarr"
    staged = _peak(tmp_path, src, ser, "to_series", "auto")
    direct = _peak(tmp_path, src, tmp_path / "direct.zarr", "to_series", "off")
    back = _peak(tmp_path, ser, tmp_path / "back.ome.zarr", "to_images", "auto")
    for what, used in (("staged", staged), ("direct", direct), ("to_images", back)):
        assert used <= BUDGET + OVERHEAD, f"{what}: {used / 2**20:.1f} MiB"
    # and the data really went through: the conversions are complete and equal
    a = vz.open_image(src).values
    np.testing.assert_array_equal(vz.open_series(ser).values, a)
    np.testing.assert_array_equal(vz.open_series(tmp_path / "direct.zarr").values, a)
    np.testing.assert_array_equal(vz.open_image(tmp_path / "back.ome.zarr").values, a)



def test_malloc_tuning_is_scoped_to_each_copy_task(tmp_path, monkeypatch):
    """The 1 MiB mmap threshold the copy tasks need is undone after each of them, so later
    work in the process gets glibc's settled thresholds back (not every large buffer mapped
    and faulted in afresh)."""
    from voxzarr.series import executor

    calls: list[str] = []
    monkeypatch.setattr(executor, "tune_malloc", lambda: calls.append("tune"))
    monkeypatch.setattr(executor, "settle_malloc", lambda: calls.append("settle"))
    a = np.random.default_rng(2).integers(0, 4000, (12, 8, 16, 16), dtype=np.uint16)
    vz.from_array(a, "tzyx").vox.to_ome_zarr(tmp_path / "img.ome.zarr",
                                             chunks=(1, 8, 16, 16), progress=False)
    vz.open_image(tmp_path / "img.ome.zarr").vox.to_series(tmp_path / "s.zarr",
                                                          memory="64KB", progress=False)
    np.testing.assert_array_equal(vz.open_series(tmp_path / "s.zarr").values, a)
    assert calls.count("tune") >= 1
    assert calls == ["tune", "settle"] * calls.count("tune")
    # and the real functions run on this platform without error
    monkeypatch.undo()
    executor.tune_malloc()
    executor.settle_malloc()
