"""Series figures: sample traces against t and per-voxel maps (``ser.vox.series``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr.errors import VoxzarrError  # noqa: E402
from voxzarr.series.figures import grid_voxels  # noqa: E402

VS = {"t": 0.5, "y": 0.2, "x": 0.3}


def _movie(shape=(7, 4, 6), seed=0, chunks=None):
    rng = np.random.default_rng(seed)
    a = rng.uniform(10, 100, size=shape)
    arr = da.from_array(a, chunks=chunks) if chunks else a
    dims = "tyx" if len(shape) == 3 else "tzyx"
    vs = VS if len(shape) == 3 else {**VS, "z": 2.0}
    return a, vz.from_array(arr, dims=dims, voxel_size=vs, name="movie")


def _lines(fig):
    (ax,) = fig.axes
    return ax, ax.get_lines()


def _image_axes(fig):
    return [a for a in fig.axes if a.images]


# --------------------------------------------------------------------------- traces
def test_traces_for_given_voxels():
    a, img = _movie()
    voxels = [{"y": 3, "x": 5}, {"y": 0, "x": 1}, {"y": -1, "x": 0}]
    fig = img.vox.series.plot(voxels=voxels)
    ax, lines = _lines(fig)
    assert len(lines) == 3
    for line, (y, x) in zip(lines, [(3, 5), (0, 1), (3, 0)], strict=True):
        np.testing.assert_array_equal(line.get_xdata(), img["t"].values)
        np.testing.assert_array_equal(line.get_ydata(), a[:, y, x])
    assert ax.get_xlabel() == "t (s)"
    assert ax.get_ylabel() == "intensity"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["y=0.6 µm, x=1.5 µm", "y=0 µm, x=0.3 µm", "y=0.6 µm, x=0 µm"]


@pytest.mark.parametrize("method", ["zscore", "dff"])
def test_traces_normalized(method):
    a, img = _movie()
    voxels = [{"y": 1, "x": 2}, {"y": 2, "x": 4}]
    ax, lines = _lines(img.vox.series.plot(voxels=voxels, normalize=method))
    for line, (y, x) in zip(lines, [(1, 2), (2, 4)], strict=True):
        s = a[:, y, x]
        if method == "zscore":
            ref = (s - s.mean()) / s.std()
        else:
            b = np.percentile(s, 20)
            ref = (s - b) / b
        np.testing.assert_allclose(line.get_ydata(), ref, rtol=1e-12)
    assert ax.get_ylabel() == {"zscore": "z-score", "dff": "dF/F"}[method]


def test_default_voxels_are_a_grid():
    a, img = _movie()
    ax, lines = _lines(img.vox.series.plot(n=4))
    # y: 2 points in 4 rows -> rows 1, 3; x: 2 points in 6 cols -> cols 1, 4
    expect = [(1, 1), (1, 4), (3, 1), (3, 4)]
    assert len(lines) == 4
    for line, (y, x) in zip(lines, expect, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), a[:, y, x])
    assert len(_lines(img.vox.series.plot())[1]) == 8  # default n


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=3), st.integers(1, 30))
def test_grid_voxels_distinct_in_range(shape, n):
    sizes = {d: s for d, s in zip("zyx"[-len(shape):], shape, strict=True)}
    pos = grid_voxels(sizes, n)
    total = int(np.prod(shape))
    assert set(pos) == set(sizes)
    points = set(zip(*(pos[d].tolist() for d in sizes), strict=True))
    assert len(points) == min(n, total) == len(pos[next(iter(sizes))])
    for d, s in sizes.items():
        assert pos[d].min() >= 0 and pos[d].max() < s


def test_traces_from_mask():
    a, img = _movie()
    mask = xr.zeros_like(img.isel(t=0), dtype=bool)
    mask[0, 0] = mask[2, 3] = mask[3, 5] = True
    _, lines = _lines(img.vox.series.plot(voxels=mask))
    assert len(lines) == 3
    for line, (y, x) in zip(lines, [(0, 0), (2, 3), (3, 5)], strict=True):
        np.testing.assert_array_equal(line.get_ydata(), a[:, y, x])
    # more true voxels than n: n of them, evenly spaced in storage order (first and last)
    _, lines = _lines(img.vox.series.plot(voxels=mask, n=2))
    np.testing.assert_array_equal(lines[0].get_ydata(), a[:, 0, 0])
    np.testing.assert_array_equal(lines[1].get_ydata(), a[:, 3, 5])


def test_traces_read_only_selected_chunks():
    a = np.random.default_rng(1).uniform(size=(6, 8, 8))
    read: list[tuple[int, ...]] = []

    def record(block, block_info=None):
        read.append(tuple(block_info[0]["chunk-location"]))
        return block

    lazy = da.from_array(a, chunks=(1, 4, 4)).map_blocks(record, dtype=a.dtype)
    img = vz.from_array(lazy, dims="tyx", voxel_size=VS)
    _, lines = _lines(img.vox.series.plot(voxels=[{"y": 1, "x": 6}]))
    np.testing.assert_array_equal(lines[0].get_ydata(), a[:, 1, 6])
    assert sorted(read) == [(t, 0, 1) for t in range(6)]  # one spatial block of 4


def test_traces_with_channels():
    rng = np.random.default_rng(2)
    a = rng.uniform(size=(5, 2, 3, 4))
    img = vz.from_array(a, dims="tcyx", voxel_size=VS, channel_names=["gfp", "rfp"])
    ax, lines = _lines(img.vox.series.plot(voxels=[{"y": 2, "x": 3}]))
    assert len(lines) == 2
    np.testing.assert_array_equal(lines[1].get_ydata(), a[:, 1, 2, 3])
    assert ax.get_legend().get_texts()[1].get_text() == "y=0.4 µm, x=0.9 µm, c=rfp"


@pytest.mark.parametrize("kwargs, field", [
    ({"normalize": "log"}, "normalize"),
    ({"voxels": [{"y": 1}]}, "voxels"),
    ({"voxels": [{"y": 9, "x": 0}]}, "voxels"),
    ({"voxels": {"y": 1, "x": 1}}, "voxels"),
    ({"n": 0}, "n"),
])
def test_traces_bad_input(kwargs, field):
    _, img = _movie()
    with pytest.raises(VoxzarrError) as err:
        img.vox.series.plot(**kwargs)
    assert err.value.field == field


def test_traces_bad_mask():
    _, img = _movie()
    empty = xr.zeros_like(img.isel(t=0), dtype=bool)
    with pytest.raises(VoxzarrError, match="selects no voxel"):
        img.vox.series.plot(voxels=empty)
    with pytest.raises(VoxzarrError, match="boolean"):
        img.vox.series.plot(voxels=xr.zeros_like(img.isel(t=0)))


# --------------------------------------------------------------------------- maps
@pytest.mark.parametrize("stat", ["mean", "std", "max", "median"])
def test_map_values_extent_labels(stat):
    a, img = _movie(chunks=(7, 2, 3))
    fig = img.vox.series.map_figure(stat)
    (ax,) = _image_axes(fig)
    ref = getattr(np, stat)(a, axis=0)
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), ref, rtol=1e-12)
    # voxel edges in µm, row 0 at the top: (x0, x1, y1, y0)
    np.testing.assert_allclose(ax.images[0].get_extent(), (-0.15, 1.65, 0.7, -0.1))
    assert ax.get_xlabel() == "x (µm)" and ax.get_ylabel() == "y (µm)"
    assert ax.get_aspect() == 1.0
    bars = [a for a in fig.axes if a.get_ylabel() == f"{stat} over t"]
    assert len(bars) == 1  # the colour bar
    assert fig._suptitle.get_text() == f"movie: {stat} over t"


def test_map_from_dataarray_takes_series_coords():
    a, img = _movie()
    custom = xr.DataArray(a[2] - a[0], dims=("y", "x"), name="delta")
    fig = img.vox.series.map_figure(custom)
    (ax,) = _image_axes(fig)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), a[2] - a[0])
    np.testing.assert_allclose(ax.images[0].get_extent(), (-0.15, 1.65, 0.7, -0.1))


def test_map_3d_is_projected():
    a, img = _movie(shape=(5, 3, 4, 6))
    fig = img.vox.series.map_figure("mean")
    axes = _image_axes(fig)
    assert len(axes) == 3
    xy = axes[0]
    np.testing.assert_allclose(np.asarray(xy.images[0].get_array()),
                               a.mean(axis=0).max(axis=0), rtol=1e-12)


def test_map_bad_stat():
    _, img = _movie()
    with pytest.raises(VoxzarrError) as err:
        img.vox.series.map_figure("mode")
    assert err.value.field == "stat"
    with pytest.raises(VoxzarrError):
        img.vox.series.map_figure(img)  # still has t


# --------------------------------------------------------------------------- real data
def test_real_timelapse(data_dir, tmp_path):
    import tifffile

    a = tifffile.imread(data_dir / "timelapse" / "membrane_2d_timelapse.tif")
    img = vz.from_array(da.from_array(a, chunks=(1, 128, 128)), dims="tyx",
                        voxel_size={"t": 2.0, "y": 0.2, "x": 0.2}, name="membrane")
    fig = img.vox.series.plot(voxels=[{"y": 100, "x": 40}, {"y": 200, "x": 250}],
                              normalize="zscore")
    ax, lines = _lines(fig)
    np.testing.assert_array_equal(lines[0].get_xdata(), [0.0, 2.0, 4.0, 6.0, 8.0])
    s = a[:, 200, 250].astype(np.float64)
    np.testing.assert_allclose(lines[1].get_ydata(), (s - s.mean()) / s.std(), rtol=1e-12)
    assert lines[1].get_label() == "y=40 µm, x=50 µm"
    fig.savefig(tmp_path / "traces.png")
    fig = img.vox.series.map_figure("mean")
    (ax,) = _image_axes(fig)
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), a.mean(axis=0))
    np.testing.assert_allclose(ax.images[0].get_extent(), (-0.1, 51.1, 51.1, -0.1))
    fig.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 0


# --------------------------------------------------------------------------- drawing only
def test_plot_draws_what_it_is_given():
    """voxzarr.plot only draws: the series object chooses the voxels and computes."""
    from voxzarr.plot import map_figure, traces_figure

    a, img = _movie()
    voxels = {"y": np.array([3, 0]), "x": np.array([5, 1])}
    values = np.stack([a[:, 3, 5], a[:, 0, 1]])
    ax, lines = _lines(traces_figure(img, voxels, values, ylabel="z"))
    assert [list(line.get_ydata()) for line in lines] == [list(v) for v in values]
    assert ax.get_ylabel() == "z"
    fig = map_figure(img.mean("t"), "my map")
    assert fig.axes[-1].get_ylabel() == "my map"  # the colour bar


def test_old_plot_functions_warn_and_match():
    from voxzarr.plot import series_map_figure, series_traces_figure

    a, img = _movie()
    voxels = [{"y": 3, "x": 5}]
    with pytest.warns(DeprecationWarning, match="series.plot"):
        old = series_traces_figure(img, voxels, normalize="dff")
    new = img.vox.series.plot(voxels, normalize="dff")
    np.testing.assert_array_equal(_lines(old)[1][0].get_ydata(), _lines(new)[1][0].get_ydata())
    with pytest.warns(DeprecationWarning, match="map_figure"):
        old = series_map_figure(img, "std")
    new = img.vox.series.map_figure("std")
    np.testing.assert_array_equal(_image_axes(old)[0].images[0].get_array(),
                                  _image_axes(new)[0].images[0].get_array())
