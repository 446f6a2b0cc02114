"""Every example script runs on the sample data, checks its own result and draws its figures.

Each script asserts what it shows (so a library regression fails it) and ends by printing a
line that says so; this test runs it in a fresh process with an output folder, then checks
that line and that every figure it promises was written and is not blank.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# script -> (a line its output must contain, the figures it writes into its output folder)
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "open_inspect.py": (
        "and 41 planes in",
        ("projections.png", "projections_two_channels.png", "planes/z0020.png")),
    "tiling_overlap.py": (
        "seam-free at depth 12: halo store result identical to the whole image: True",
        ("seams.png", "halo_depth.png")),
    "isotropic.py": (
        "equals scipy on the whole array: True",
        ("projections_before.png", "projections_after.png")),
    "chunked_interpolation.py": (
        "all within float32 rounding",
        ("ndinterp.png",)),
    "series.py": (
        "back to one frame per chunk: identical = True",
        ("traces.png", "correlation_map.png")),
    "convert_archive.py": (
        "pixels and geometry unchanged: True",
        ("converted.png", "upgraded.png")),
}


def test_every_example_is_run_here_and_documented():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(EXPECTED)
    readme = (ROOT / "README.md").read_text()
    for name in scripts:
        doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
        assert doc and f"python examples/{name}" in doc, f"{name}: docstring says how to run it"
        assert f"examples/{name}" in readme, f"README lists {name}"


def _check_figure(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    with Image.open(path) as im:
        assert im.format == "PNG"
        width, height = im.size
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert min(width, height) >= 32, f"{path.name}: {im.size}"
    assert pixels.std() > 1.0, f"{path.name} is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= 8, f"{path.name} is trivial"


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(tmp_path, script):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(EXAMPLES / script), str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    line, figures = EXPECTED[script]
    assert line in run.stdout, run.stdout[-3000:]
    for name in figures:
        _check_figure(out / name)
