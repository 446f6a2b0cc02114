"""`voxzarr demo` and the bundled sample, end to end (the examples: test_examples.py)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tifffile  # noqa: E402
from PIL import Image  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr.cli import main  # noqa: E402
from voxzarr.demo import MARKER, load_sample, run_demo, sample_path  # noqa: E402


def test_bundled_sample_and_attribution(data_dir):
    path = sample_path()
    assert path.read_bytes() == (data_dir / "3d" / "Bead_Image1_crop.tif").read_bytes()
    text = (path.parent / "ATTRIBUTION.md").read_text()
    for needed in ("CC-BY-4.0", "BSD-3", "MPI-CBG", "BioImageAnalysisNotebooks", "3766d2f6",
                   "ca6560a5"):
        assert needed in text


def test_load_sample_geometry():
    img = load_sample()
    assert img.dims == ("z", "y", "x") and img.shape == (41, 150, 150)
    assert img.dtype == np.uint8 and img.name == "beads"
    size = img.vox.voxel_size
    assert size["z"] == 0.125
    assert size["y"] == size["x"] == pytest.approx(0.02249, abs=5e-6)
    assert img.vox.units == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    np.testing.assert_array_equal(img.values, tifffile.imread(sample_path()))


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    res = run_demo(out)
    printed = capsys.readouterr().out
    assert "41 x 150 x 150 uint8" in printed and str(out) in printed
    assert (out / MARKER).is_file()

    img = vz.open_image(res.image)
    assert img.shape == (41, 150, 150)
    assert vz.info(res.image)["ngff_version"] == "0.5"
    np.testing.assert_array_equal(img.values, tifffile.imread(sample_path()))

    with Image.open(res.projections_before) as im:
        assert im.size == (880, 880)  # 8.8 x 8.8 inches at 100 dpi: extents 3.37 + 5.13 um
    iso = vz.open_image(res.isotropic)
    assert iso.shape == (228, 150, 150)  # round(41 * 0.125 / 0.022491858) = 228
    assert iso.vox.voxel_size["z"] == pytest.approx(img.vox.voxel_size["x"])
    assert res.projections_after.is_file()
    assert "228 x 150 x 150" in printed

    # a second run replaces a previous demo output without --overwrite
    run_demo(out, verbose=False)
    assert vz.open_image(res.image).shape == (41, 150, 150)


def test_demo_refuses_foreign_folder(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(vz.OverwriteError, match="not a previous demo output"):
        run_demo(out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main(["demo", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    # --overwrite writes the demo's files but leaves everything else alone
    assert main(["demo", "--out", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "bead.ome.zarr").is_dir()


def test_demo_refuses_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(vz.OverwriteError, match="not a folder"):
        run_demo(target)
    assert target.read_text() == "x"
