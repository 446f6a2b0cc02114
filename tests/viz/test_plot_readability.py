"""Pictures stay readable: time labels, a scale bar visible on any background, thin stacks
drawn with room for their panels and ticks that never overlap (checked on rendered pixels)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # noqa: E402
from PIL import Image  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr.errors import VoxzarrError  # noqa: E402
from voxzarr.plot import projections  # noqa: E402

THIN = {"z": 1.0, "y": 0.2, "x": 0.2}


def _panels(fig: Figure) -> dict[str, object]:
    """Axes of a projections figure by view name, from the view labels' gid."""
    return {t.get_gid().split(":")[1]: ax for ax in fig.axes for t in ax.texts
            if (t.get_gid() or "").startswith("view:")}


def _png(fig: Figure) -> np.ndarray:
    """The figure as saved to PNG, read back as an RGB array (row 0 at the top)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return np.asarray(Image.open(buf).convert("RGB")).astype(np.float64)


def _visible_ticklabels(axis) -> list:
    lo, hi = sorted(axis.get_view_interval())
    return [lab for tick in axis.get_major_ticks() if lo <= tick.get_loc() <= hi
            for lab in (tick.label1, tick.label2) if lab.get_visible() and lab.get_text()]


def _assert_no_overlapping_ticks(fig: Figure) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for axis, along in ((ax.xaxis, 0), (ax.yaxis, 1)):
            boxes = [lab.get_window_extent(renderer) for lab in _visible_ticklabels(axis)]
            spans = sorted(((b.x0, b.x1), (b.y0, b.y1))[along] for b in boxes)
            for a, b in zip(spans, spans[1:], strict=False):
                assert a[1] <= b[0], (ax.get_xlabel(), ax.get_ylabel(), axis.axis_name, spans)


# --------------------------------------------------------------------------- time labels
def test_time_axis_without_unit_is_never_pixels():
    rng = np.random.default_rng(0)
    img = vz.from_array(rng.uniform(0, 1, (6, 4, 5)), "tyx", voxel_size={"y": 0.2, "x": 0.2},
                        units="micrometer")
    ax = img.vox.series.plot(n=2).axes[0]
    assert ax.get_xlabel() == "t (s)"  # from_array's default frame interval unit
    img.coords["t"].attrs.pop("units")
    ax = img.vox.series.plot(n=2).axes[0]
    assert ax.get_xlabel() == "t"
    ax = img.drop_vars("t").vox.series.plot(n=2).axes[0]
    assert ax.get_xlabel() == "t (frame)"
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), np.arange(6))


# --------------------------------------------------------------------------- scale bar
@pytest.mark.parametrize("value", [0, 255])
def test_scale_bar_contrasts_on_white_and_black(value):
    img = vz.from_array(np.full((8, 64, 64), value, "uint8"), "zyx",
                        voxel_size={"z": 1.0, "y": 0.5, "x": 0.5}, units="micrometer")
    fig = projections(img, vmin=0, vmax=255)
    pixels = _png(fig)
    (bar,) = [c for c in _panels(fig)["XY"].get_children() if isinstance(c, AnchoredSizeBar)]
    box = bar.size_bar.get_window_extent(fig.canvas.get_renderer())
    height = pixels.shape[0]
    r0, r1 = int(np.ceil(height - box.y1)), int(np.floor(height - box.y0))
    c0, c1 = int(np.ceil(box.x0)), int(np.floor(box.x1))
    assert r1 - r0 >= 2 and c1 - c0 >= 20
    grey = pixels.mean(axis=2)
    inside = grey[r0 + 1:r1 - 1, c0 + 1:c1 - 1]
    ring = np.ones(grey.shape, bool)
    ring[r0 - 4:r1 + 4, c0 - 4:c1 + 4] = False
    ring = ~ring
    ring[r0 - 1:r1 + 1, c0 - 1:c1 + 1] = False  # the bar and its anti-aliased edge
    around = grey[ring]
    assert inside.min() > 200  # a white bar ...
    assert inside.mean() - around.mean() > 80  # ... on something clearly darker
    # and the image itself is left as it is away from the bar
    assert abs(grey[height // 2, int(box.x0) - 60] - value) < 1


# --------------------------------------------------------------------------- thin stacks
def test_five_plane_stack_panels_have_room_and_say_stretch():
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, (5, 512, 512)).astype("uint8")
    img = vz.from_array(data, "zyx", voxel_size=THIN, units="micrometer")
    fig = projections(img)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    p = _panels(fig)
    win = {k: ax.get_window_extent(renderer) for k, ax in p.items()}
    assert win["XZ"].height >= 0.12 * win["XY"].height and win["XZ"].height >= 60
    assert win["ZY"].width >= 0.12 * win["XY"].width and win["ZY"].width >= 60
    # the drawn aspect is the physical one times the stated factor, never silently
    labels = {k: [t.get_text() for t in ax.texts if t.get_gid()][0] for k, ax in p.items()}
    assert labels == {"XY": "XY", "XZ": "XZ  z ×4", "ZY": "ZY  z ×4"}
    assert win["XZ"].height / win["XZ"].width == pytest.approx(5 * 4 / 102.4, rel=0.03)
    assert win["ZY"].width / win["ZY"].height == pytest.approx(5 * 4 / 102.4, rel=0.03)
    assert win["XY"].height / win["XY"].width == pytest.approx(1.0, rel=0.02)
    assert p["XZ"].get_ylabel() == "z (µm)"  # extents and coordinates stay physical
    np.testing.assert_allclose(p["XZ"].images[0].get_extent(), [-0.1, 102.3, 4.5, -0.5])
    spare = [t.get_text() for ax in fig.axes if not ax.images for t in ax.texts]
    assert any("z drawn stretched ×4" in t for t in spare)
    _assert_no_overlapping_ticks(fig)


def test_true_aspect_when_asked_and_ticks_still_apart():
    data = np.zeros((5, 512, 512), "uint8")
    img = vz.from_array(data, "zyx", voxel_size=THIN, units="micrometer")
    fig = projections(img, min_panel=0)
    p = _panels(fig)
    assert all(ax.get_aspect() == 1.0 for ax in p.values())
    assert {t.get_text() for ax in p.values() for t in ax.texts} == {"XY", "XZ", "ZY"}
    _assert_no_overlapping_ticks(fig)
    with pytest.raises(VoxzarrError, match="min_panel"):
        projections(img, min_panel=-1)


def test_thin_two_dimensional_image_says_it_is_stretched():
    img = vz.from_array(np.ones((5, 512), "uint8"), "yx", voxel_size=0.2, units="micrometer")
    fig = projections(img)
    (ax,) = fig.axes
    # 1 µm beside 102.4 µm: drawn at least 0.15 x 102.4 long, the next integer factor
    assert [t.get_text() for t in ax.texts] == ["y stretched ×16"]
    assert ax.get_aspect() == 16.0
    _assert_no_overlapping_ticks(fig)


def test_regular_stack_unchanged_and_ticks_apart():
    img = vz.from_array(np.zeros((30, 40, 60), "uint8"), "zyx",
                        voxel_size={"z": 1.0, "y": 0.5, "x": 0.5}, units="micrometer")
    fig = projections(img)
    assert {t.get_text() for ax in _panels(fig).values() for t in ax.texts} == {
        "XY", "XZ", "ZY"}
    assert all(ax.get_aspect() == 1.0 for ax in _panels(fig).values())
    _assert_no_overlapping_ticks(fig)


def test_series_map_of_thin_stack_keeps_ticks_apart():
    rng = np.random.default_rng(2)
    movie = vz.from_array(rng.uniform(0, 1, (4, 3, 128, 128)), "tzyx",
                          voxel_size={"t": 1.0, **THIN}, units="micrometer")
    fig = movie.vox.series.map_figure("mean")
    assert "XZ  z ×2" in [t.get_text() for ax in fig.axes for t in ax.texts]
    _assert_no_overlapping_ticks(fig)
