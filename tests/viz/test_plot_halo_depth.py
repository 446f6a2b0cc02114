"""The find_halo_depth report draws its seam experiment: difference images and their sums."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import voxzarr as vz


def test_halo_depth_figure_shows_seams_vanishing(tmp_path):
    rng = np.random.default_rng(3)
    img = vz.from_array(rng.random((40, 40)).astype("float32"), "yx", voxel_size=1)

    def fn(a):
        return ndimage.gaussian_filter(a, 2, mode="reflect")

    report = img.vox.find_halo_depth(fn, max_depth=16, tile=10)
    assert report.depth == 8  # int(4 * 2 + 0.5)
    fig = report.figure(img, fn)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("depth ")]
    assert len(panels) == len(report.max_diff)
    sums = {int(ax.get_title().split()[1].rstrip(":")): float(ax.get_title().split("= ")[1])
            for ax in panels}
    assert sums[report.depth] == 0.0
    assert sums[0] > 0.0
    # the seam image at depth 0 is non-zero exactly along tile borders
    seam = panels[0].get_images()[0].get_array()
    assert seam.shape == (report.regions[0][0].stop - report.regions[0][0].start,
                          report.regions[0][1].stop - report.regions[0][1].start)
    assert float(np.asarray(seam).max()) > 0
    curve = next(ax for ax in fig.axes if ax.get_xlabel() == "halo depth (voxels)")
    assert curve.get_ylabel() == "sum |tiled - untiled|"
    fig.savefig(tmp_path / "seams.png")
    assert (tmp_path / "seams.png").stat().st_size > 1000


def test_halo_depth_figure_needs_depths():
    img = vz.from_array(np.zeros((8, 8), "float32"), "yx", voxel_size=1)
    report = img.vox.find_halo_depth(lambda a: a, max_depth=2, tile=4)
    with pytest.raises(vz.VoxzarrError):
        report.figure(img, lambda a: a, depths=[])


def test_report_computes_and_plot_draws():
    from voxzarr.plot import halo_depth_figure, seam_figure

    rng = np.random.default_rng(4)
    img = vz.from_array(rng.random((24, 24)).astype("float32"), "yx", voxel_size=1)

    def fn(a):
        return ndimage.uniform_filter(a, 3)

    report = img.vox.find_halo_depth(fn, max_depth=4, tile=8)
    diffs = report.seam_differences(img, fn)
    assert sorted(diffs) == sorted(report.max_diff)
    assert {d: float(v.max()) for d, v in diffs.items()}[report.depth] == 0.0
    fig = seam_figure(diffs, tile=report.tile, dims=("y", "x"), seam_free=report.depth)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("depth ")]
    assert titles == [ax.get_title() for ax in report.figure(img, fn).axes
                      if ax.get_title().startswith("depth ")]
    with pytest.warns(DeprecationWarning, match="report.figure"):
        halo_depth_figure(report, img, fn)
