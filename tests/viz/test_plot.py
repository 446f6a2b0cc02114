"""voxzarr.plot: projections at physical aspect and PNG export (checked by content)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from dask.callbacks import Callback  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # noqa: E402
from PIL import Image  # noqa: E402

import voxzarr as vz  # noqa: E402
from voxzarr.cli import main  # noqa: E402
from voxzarr.errors import GeometryError, OverwriteError, VoxzarrError  # noqa: E402
from voxzarr.plot import _square_pixels, nice_length, projections, to_pngs  # noqa: E402

VOXEL = {"z": 2.0, "y": 0.5, "x": 0.25}


def _volume(shape=(6, 10, 16), chunks=(2, 5, 8)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 1000, size=shape).astype("uint16")


def _panels(fig):
    """Axes of a projections figure keyed by their view name ("XY", "XZ", "ZY")."""
    out = {}
    for ax in fig.axes:
        for t in ax.texts:
            if t.get_text() in ("XY", "XZ", "ZY"):
                out[t.get_text()] = ax
    return out


class _MaxResult(Callback):
    """Record the largest task result (bytes) a dask computation produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        self.largest = max(self.largest, getattr(result, "nbytes", 0))


# --------------------------------------------------------------------------- projections
def test_projections_values_extents_labels():
    data = _volume()
    img = vz.from_array(da.from_array(data, chunks=(2, 5, 8)), "zyx", voxel_size=VOXEL,
                        translation={"z": 1.0, "y": 0.0, "x": 0.0}, name="cells")
    fig = projections(img)
    p = _panels(fig)
    assert set(p) == {"XY", "XZ", "ZY"}
    np.testing.assert_array_equal(p["XY"].images[0].get_array(), data.max(axis=0))
    np.testing.assert_array_equal(p["XZ"].images[0].get_array(), data.max(axis=1))
    np.testing.assert_array_equal(p["ZY"].images[0].get_array(), data.max(axis=2).T)
    # extents are voxel edges: (left, right, bottom, top) with row 0 at the top
    assert p["XY"].images[0].get_extent() == [-0.125, 3.875, 4.75, -0.25]
    assert p["XZ"].images[0].get_extent() == [-0.125, 3.875, 12.0, 0.0]
    assert p["ZY"].images[0].get_extent() == [0.0, 12.0, 4.75, -0.25]
    assert (p["XY"].get_xlabel(), p["XY"].get_ylabel()) == ("x (µm)", "y (µm)")
    assert (p["XZ"].get_xlabel(), p["XZ"].get_ylabel()) == ("x (µm)", "z (µm)")
    assert (p["ZY"].get_xlabel(), p["ZY"].get_ylabel()) == ("z (µm)", "y (µm)")
    assert all(ax.get_aspect() == 1.0 for ax in p.values())
    assert fig._suptitle.get_text() == "cells: max projections"


def test_panels_drawn_at_physical_aspect():
    img = vz.from_array(_volume((8, 40, 60)), "zyx", voxel_size={"z": 3.0, "y": 0.5, "x": 0.5})
    fig = projections(img)
    fig.canvas.draw()
    p = _panels(fig)
    fw, fh = fig.get_size_inches()
    size = {k: (ax.get_position().width * fw, ax.get_position().height * fh)
            for k, ax in p.items()}
    # physical extents: x 30, y 20, z 24 -> on-screen sizes in the same proportions
    assert size["XY"][0] / size["XY"][1] == pytest.approx(30 / 20, rel=0.02)
    assert size["XZ"][0] / size["XZ"][1] == pytest.approx(30 / 24, rel=0.02)
    assert size["ZY"][0] / size["ZY"][1] == pytest.approx(24 / 20, rel=0.02)
    assert size["ZY"][0] / size["XY"][0] == pytest.approx(24 / 30, rel=0.02)


def test_scale_bar_in_physical_units():
    img = vz.from_array(_volume(), "zyx", voxel_size=VOXEL, units="nanometer")
    fig = projections(img)
    bars = [c for c in _panels(fig)["XY"].get_children() if isinstance(c, AnchoredSizeBar)]
    assert len(bars) == 1
    assert bars[0].txt_label.get_text() == "0.5 nm"  # x extent 4 -> round length near 0.8
    assert _panels(fig)["XY"].get_xlabel() == "x (nm)"
    fig2 = projections(img, scale_bar=False)
    assert not [c for c in _panels(fig2)["XY"].get_children()
                if isinstance(c, AnchoredSizeBar)]


def test_projections_chunkwise_never_whole_volume():
    data = np.zeros((32, 64, 64), "float32")
    data[5, 6, 7] = 3.0
    img = vz.from_array(da.from_array(data, chunks=(8, 32, 32)), "zyx", voxel_size=VOXEL)
    with _MaxResult() as cb:
        fig = projections(img, reduce="mean")
    chunk_bytes = 8 * 32 * 32 * 4
    assert 0 < cb.largest <= max(chunk_bytes, 64 * 64 * 4)
    assert cb.largest < data.nbytes / 4
    np.testing.assert_allclose(_panels(fig)["XY"].images[0].get_array(), data.mean(axis=0))


def test_multichannel_composite_and_legend():
    data = np.zeros((2, 3, 4, 5), "uint8")
    data[0, 1, 2, 3] = 200  # channel 0 only
    data[1, 2, 0, 0] = 100  # channel 1 only
    img = vz.from_array(data, "czyx", voxel_size=1.0, channel_names=["DAPI", "GFP"])
    fig = projections(img, colors=["blue", "yellow"])
    xy = _panels(fig)["XY"].images[0].get_array()
    assert xy.shape == (4, 5, 3)
    np.testing.assert_allclose(xy[2, 3], [0, 0, 1])  # blue at channel 0's maximum
    np.testing.assert_allclose(xy[0, 0], [1, 1, 0])  # yellow at channel 1's maximum
    np.testing.assert_allclose(xy[1, 1], [0, 0, 0])
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == ["DAPI", "GFP"]


def test_omero_colours_used():
    data = np.ones((2, 4, 4), "uint8")
    img = vz.from_array(data, "cyx", voxel_size=1.0, channel_names=["a", "b"])
    img.attrs["omero"] = {"channels": [{"color": "FF0000"}, {"color": "00FF00"}]}
    fig = projections(img, vmin=0, vmax=1)
    legend = fig.axes[0].get_legend()
    colours = [tuple(h.get_facecolor()[:3]) for h in legend.legend_handles]
    assert colours == [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0)]


def test_two_dimensional_image():
    data = np.arange(12, dtype="uint8").reshape(3, 4)
    img = vz.from_array(data, "yx", voxel_size={"y": 2.0, "x": 1.0})
    fig = projections(img)
    (ax,) = fig.axes
    np.testing.assert_array_equal(ax.images[0].get_array(), data)
    assert ax.images[0].get_extent() == [-0.5, 3.5, 5.0, -1.0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (µm)", "y (µm)")
    assert fig._suptitle.get_text() == "image"  # a 2-D image is not a projection


def test_time_axis_first_or_reduced():
    data = np.zeros((3, 2, 4, 4), "uint8")
    data[0, 0, 1, 1] = 5
    data[2, 1, 2, 2] = 9
    img = vz.from_array(data, "tzyx", voxel_size=1.0)
    xy0 = _panels(projections(img))["XY"].images[0].get_array()
    np.testing.assert_array_equal(xy0, data[0].max(axis=0))
    xym = _panels(projections(img, t="max"))["XY"].images[0].get_array()
    np.testing.assert_array_equal(xym, data.max(axis=(0, 1)))
    with pytest.raises(VoxzarrError, match="out of range"):
        projections(img, t=3)


def test_projections_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(1, 3)
    out = projections(vz.from_array(_volume(), "zyx", voxel_size=VOXEL), ax=axes)
    assert out is fig
    assert [ax.get_xlabel() for ax in axes] == ["x (µm)", "x (µm)", "z (µm)"]
    with pytest.raises(VoxzarrError, match="3 Axes"):
        projections(vz.from_array(_volume(), "zyx", voxel_size=VOXEL), ax=axes[:2])


def test_bad_arguments():
    img = vz.from_array(_volume(), "zyx", voxel_size=VOXEL)
    with pytest.raises(VoxzarrError, match="reduction"):
        projections(img, reduce="median")
    with pytest.raises(VoxzarrError, match="channels"):
        projections(img.expand_dims(c=2).transpose("c", "z", "y", "x"), vmin=[0, 1, 2])


def test_accessor_delegates():
    img = vz.from_array(_volume(), "zyx", voxel_size=VOXEL)
    fig = img.vox.projections(reduce="min")
    np.testing.assert_array_equal(_panels(fig)["XY"].images[0].get_array(),
                                  _volume().min(axis=0))


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-6, 1e6, allow_nan=False))
def test_nice_length(span):
    length = nice_length(span)
    mantissa = float(f"{length:e}".split("e")[0])
    assert mantissa in (1.0, 2.0, 5.0)
    assert span * 0.2 / 2.5 <= length * (1 + 1e-9) and length <= span * 0.2 * (1 + 1e-9)


# --------------------------------------------------------------------------- PNGs
def _read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im)


def test_pngs_8bit_known_plane(tmp_path):
    data = _volume((5, 10, 16))
    img = vz.from_array(da.from_array(data, chunks=(2, 10, 16)), "zyx",
                        voxel_size={"z": 1.0, "y": 0.3, "x": 0.3})
    paths = to_pngs(img, tmp_path / "png")
    assert [p.name for p in paths] == [f"z000{i}.png" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [p.name for p in paths]
    lo, hi = data.min(), data.max()
    for i in (0, 3):
        got = _read(paths[i])
        assert got.dtype == np.uint8 and got.shape == (10, 16)
        np.testing.assert_array_equal(got, np.round((data[i] - lo) / (hi - lo) * 255))


def test_pngs_16bit_exact_values(tmp_path):
    data = _volume((3, 6, 7)) * 60
    img = vz.from_array(data, "zyx", voxel_size=1.0)
    paths = to_pngs(img, tmp_path, bits=16, vmin=0, vmax=65535)
    with Image.open(paths[1]) as im:
        assert im.mode == "I;16" and im.size == (7, 6)
    np.testing.assert_array_equal(_read(paths[1]), data[1])


def test_pngs_vmin_vmax_and_colour_map(tmp_path):
    data = np.arange(2 * 4 * 4, dtype="float32").reshape(2, 4, 4)
    img = vz.from_array(data, "zyx", voxel_size=1.0)
    paths = to_pngs(img, tmp_path, cmap="viridis", vmin=4.0, vmax=20.0)
    got = _read(paths[0])
    assert got.shape == (4, 4, 3)
    norm = np.clip((data[0] - 4.0) / 16.0, 0, 1)
    np.testing.assert_array_equal(got, colormaps["viridis"](norm, bytes=True)[..., :3])


def test_pngs_anisotropic_plane_made_square(tmp_path):
    data = np.zeros((1, 3, 4), "uint8")
    data[0, :, :] = np.array([0, 60, 120, 240], dtype="uint8")  # ramp along x
    data[0, 1, 0] = 255
    img = vz.from_array(data, "zyx", voxel_size={"z": 1.0, "y": 1.0, "x": 0.5})
    (path,) = to_pngs(img, tmp_path, vmin=0, vmax=255)
    got = _read(path)
    assert got.shape == (6, 4)  # y upsampled 2x so pixels are square
    np.testing.assert_array_equal(got[:, 1], [60] * 6)
    # column 0 along y: rows 0, 255, 0 at centres 0.5, 1.5, 2.5 (output centres at .25 steps)
    np.testing.assert_array_equal(got[:, 0], [0, 64, 191, 191, 64, 0])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), m=st.integers(1, 12), ratio=st.sampled_from([1.0, 1.5, 2.0, 5.6]),
       value=st.floats(0, 1))
def test_square_pixels_shape_and_constant(n, m, ratio, value):
    plane = np.full((n, m), value)
    out = _square_pixels(plane, ratio * 0.1, 0.1)
    assert out.shape == (max(1, math.floor(n * ratio + 0.5)), m)  # rounded half up
    np.testing.assert_array_equal(out, value)
    out2 = _square_pixels(plane, 0.1, ratio * 0.1)
    assert out2.shape == (n, max(1, math.floor(m * ratio + 0.5)))


def test_pngs_per_timepoint_with_projection(tmp_path):
    data = _volume((3, 4, 5, 6))
    img = vz.from_array(da.from_array(data, chunks=(1, 2, 5, 6)), "tzyx", voxel_size=1.0)
    with pytest.raises(GeometryError, match="projection"):
        to_pngs(img, tmp_path / "a", dim="t")
    assert not (tmp_path / "a").exists()
    paths = to_pngs(img, tmp_path / "b", dim="t", projection="max", bits=16, vmin=0,
                    vmax=65535)
    assert [p.name for p in paths] == ["t0000.png", "t0001.png", "t0002.png"]
    np.testing.assert_array_equal(_read(paths[2]), data[2].max(axis=0))


def test_pngs_multichannel_composite(tmp_path):
    data = np.zeros((2, 1, 3, 3), "uint8")
    data[0, 0, 0, 0] = 10
    data[1, 0, 2, 2] = 10
    img = vz.from_array(data, "czyx", voxel_size=1.0, channel_names=["a", "b"])
    (path,) = to_pngs(img, tmp_path, colors=["red", "cyan"])
    got = _read(path)
    assert got.shape == (3, 3, 3)
    assert got[0, 0].tolist() == [255, 0, 0] and got[2, 2].tolist() == [0, 255, 255]
    assert got[1, 1].tolist() == [0, 0, 0]
    with pytest.raises(VoxzarrError, match="bits=8"):
        to_pngs(img, tmp_path / "x", bits=16)


def test_pngs_refuse_overwrite_before_writing(tmp_path):
    img = vz.from_array(_volume((3, 4, 4)), "zyx", voxel_size=1.0)
    (tmp_path / "z0002.png").write_bytes(b"keep")
    with pytest.raises(OverwriteError, match="overwrite=True") as err:
        to_pngs(img, tmp_path)
    assert err.value.path == str(tmp_path / "z0002.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z0002.png"]
    assert (tmp_path / "z0002.png").read_bytes() == b"keep"
    paths = to_pngs(img, tmp_path, overwrite=True)
    assert _read(paths[2]).shape == (4, 4)


def test_pngs_bad_arguments(tmp_path):
    img = vz.from_array(_volume((3, 4, 4)), "zyx", voxel_size=1.0)
    with pytest.raises(VoxzarrError, match="grayscale"):
        to_pngs(img, tmp_path, bits=16, cmap="viridis")
    with pytest.raises(VoxzarrError, match="bits"):
        to_pngs(img, tmp_path, bits=12)
    with pytest.raises(GeometryError, match="no 't' axis"):
        to_pngs(img, tmp_path, dim="t")
    with pytest.raises(VoxzarrError, match="colour map"):
        to_pngs(img, tmp_path, cmap="no-such-map")
    assert list(tmp_path.iterdir()) == []


def test_png_cli(tmp_path, capsys):
    data = _volume((2, 5, 6))
    store = tmp_path / "a.ome.zarr"
    vz.to_ome_zarr(vz.from_array(data, "zyx", voxel_size=1.0), store)
    out = tmp_path / "png"
    argv = ["png", str(store), str(out), "--bits", "16", "--vmin", "0", "--vmax", "65535",
            "--no-progress"]
    assert main(argv) == 0
    assert "wrote 2 PNGs" in capsys.readouterr().out
    np.testing.assert_array_equal(_read(out / "z0001.png"), data[1])
    assert main(argv) == 1  # refuses to overwrite
    assert "overwrite" in capsys.readouterr().err


def test_pngs_of_bundled_sample(tmp_path):
    from voxzarr.demo import load_sample

    img = load_sample()
    paths = img.vox.to_pngs(tmp_path, vmin=0, vmax=255)
    assert len(paths) == 41
    np.testing.assert_array_equal(_read(paths[20]), img.values[20])


def test_real_ome_zarr_single_plane(data_dir):
    img = vz.open_image(data_dir / "ome-zarr" / "v0.4-bioformats2raw" / "fake-series-2.zarr",
                        series=0)
    assert img.dims == ("t", "c", "z", "y", "x")
    fig = projections(img)
    (ax,) = fig.axes  # one plane: a single panel
    np.testing.assert_array_equal(ax.images[0].get_array(), img.values[0, 0, 0])
    assert ax.images[0].get_extent() == [-0.5, 511.5, 511.5, -0.5]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (px)", "y (px)")  # no units stored


def test_large_planes_binned_for_display():
    data = _volume((4, 50, 30))
    img = vz.from_array(da.from_array(data, chunks=(2, 25, 15)), "zyx",
                        voxel_size={"z": 1.0, "y": 0.5, "x": 0.5})
    p = _panels(projections(img, max_size=16))
    xy = p["XY"].images[0].get_array()
    # y binned by ceil(50 / 16) = 4 (two trailing rows dropped), x by ceil(30 / 16) = 2
    expected = data.max(axis=0)[:48].reshape(12, 4, 15, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(xy, expected)
    assert p["XY"].images[0].get_extent() == [-0.25, 14.75, 23.75, -0.25]
    assert p["XZ"].images[0].get_array().shape == (4, 15)  # z is not binned
    assert p["ZY"].images[0].get_array().shape == (12, 4)
    assert p["ZY"].images[0].get_extent() == [-0.5, 3.5, 23.75, -0.25]


def test_pngs_per_timepoint_real_timelapse(data_dir, tmp_path):
    import tifffile
    import zarr.storage

    src = data_dir / "timelapse" / "membrane_2d_timelapse.tif"
    store = zarr.storage.MemoryStore()
    vz.convert(src, store, axes="tyx", voxel_size=1.0, progress=False)
    img = vz.open_image(store)
    paths = img.vox.to_pngs(tmp_path, dim="t", bits=16, vmin=0, vmax=65535)
    assert [p.name for p in paths] == [f"t000{i}.png" for i in range(5)]
    np.testing.assert_array_equal(_read(paths[2]), tifffile.imread(src)[2])
