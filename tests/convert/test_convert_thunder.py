"""Thunder archives: one movie, however Thunder stored it, converts to one and the same image.

The archives are built here with numpy exactly as Thunder writes them (see
``voxzarr.convert.raw``): Thunder holds each timepoint as an array of axes (y, x, z) (a TIFF
read as rows, columns, then pages), ``saveAsBinaryImages`` writes that array's bytes in
Fortran order with ``dims`` its shape, and ``saveAsBinarySeries`` writes records of int16
keys (the voxel's index into that array) then the voxel's time series, in block files named
``key02_..-key01_..-key00_...bin``. The shape mirrors Thunder's ``fish`` example (20
timepoints of 2 planes of 76 x 87): rows and columns differ, so a transpose cannot pass.
"""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import xarray as xr

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.errors import ConversionError, MetadataError
from voxzarr.series import series_info

SHAPE = (20, 2, 76, 87)  # t, z, y, x
GEOMETRY = {"voxel_size": {"z": 2.0, "y": 0.5, "x": 0.5}, "unit": "um", "time_interval": 0.5}
CLI_GEOMETRY = ["--voxel-size", "z=2,y=0.5,x=0.5", "--unit", "um", "--time-interval", "0.5",
                "--no-progress"]


def _thunder_array(frame: np.ndarray) -> np.ndarray:
    """One voxzarr frame, (z, y, x) or (y, x), as Thunder holds it: (y, x[, z])."""
    return np.moveaxis(frame, 0, -1) if frame.ndim == 3 else frame


def write_tiff_frames(folder: Path, movie: np.ndarray) -> None:
    """One multi-page TIFF per timepoint (pages = planes), as Thunder's fish/images."""
    folder.mkdir()
    for t, frame in enumerate(movie):
        tifffile.imwrite(folder / f"time{t:03d}.tif", frame, photometric="minisblack")


def write_binary_images(folder: Path, movie: np.ndarray) -> None:
    """Thunder ``saveAsBinaryImages``: ``array.transpose()`` bytes, ``dims`` = array shape."""
    folder.mkdir()
    for t, frame in enumerate(movie):
        arr = _thunder_array(frame)
        (folder / f"image-{t:05d}.bin").write_bytes(arr.transpose().copy().tobytes())
    conf = {"dims": list(_thunder_array(movie[0]).shape), "dtype": str(movie.dtype)}
    (folder / "conf.json").write_text(json.dumps(conf, indent=2))
    (folder / "SUCCESS").write_text("")


def write_binary_series(folder: Path, movie: np.ndarray, block_rows: int = 32) -> None:
    """Thunder 0.x ``saveAsBinarySeries``: blocks of rows, each a file of records (int16
    keys into the (y, x[, z]) array, last key fastest, then the T values)."""
    folder.mkdir()
    t = movie.shape[0]
    arrays = np.stack([_thunder_array(f) for f in movie])  # (t, y, x[, z])
    shape = arrays.shape[1:]
    record = np.dtype([("k", "<i2", (len(shape),)), ("v", movie.dtype, (t,))])
    for start in range(0, shape[0], block_rows):
        rows = range(start, min(start + block_rows, shape[0]))
        keys = np.array(list(itertools.product(rows, *(range(n) for n in shape[1:]))))
        recs = np.zeros(len(keys), record)
        recs["k"] = keys
        recs["v"] = arrays[(slice(None), *keys.T)].T
        first = [start] + [0] * (len(shape) - 1)
        label = "-".join(reversed([f"key{i:02d}_{k:05d}" for i, k in enumerate(first)]))
        (folder / f"{label}.bin").write_bytes(recs.tobytes())
    conf = {"input": str(folder), "nkeys": len(shape), "nvalues": t, "valuetype":
            str(movie.dtype), "keytype": "int16"}
    (folder / "conf.json").write_text(json.dumps(conf, indent=2))
    (folder / "SUCCESS").write_text("")


@pytest.fixture(scope="module")
def fish(tmp_path_factory) -> tuple[Path, np.ndarray]:
    root = tmp_path_factory.mktemp("fish")
    movie = np.random.default_rng(7).integers(-2000, 30000, SHAPE).astype("int16")
    write_tiff_frames(root / "images", movie)
    write_binary_images(root / "bin", movie)
    write_binary_series(root / "series", movie)
    return root, movie


def _convert(src: Path, dest: Path, **kw) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TIFF pages without axis names: assumed z
        vz.convert(src, dest, **GEOMETRY, **kw)


def _assert_same_image(a: xr.DataArray, b: xr.DataArray) -> None:
    assert a.dims == b.dims and a.shape == b.shape and a.dtype == b.dtype
    xr.testing.assert_equal(a.load(), b.load())  # values, dims, coordinates
    for d in a.dims:
        assert a.coords[d].attrs.get("units") == b.coords[d].attrs.get("units"), d
    assert a.vox.scale == b.vox.scale and a.vox.origin == b.vox.origin


def test_every_thunder_layout_gives_the_same_image(fish, tmp_path):
    root, movie = fish
    for name in ("images", "bin", "series"):
        _convert(root / name, tmp_path / f"{name}.zarr")
    images = vz.open_image(tmp_path / "images.zarr")
    binary = vz.open_image(tmp_path / "bin.zarr")
    series = vz.open_series(tmp_path / "series.zarr")
    assert images.dims == ("t", "z", "y", "x") and images.shape == SHAPE
    np.testing.assert_array_equal(images.values, movie)
    _assert_same_image(images, binary)
    _assert_same_image(images, series)
    assert series.vox.scale == {"t": 0.5, "z": 2.0, "y": 0.5, "x": 0.5}
    assert series.coords["y"].attrs["units"] == "micrometer"


def test_thunder_series_converts_to_the_series_layout(fish, tmp_path):
    root, movie = fish
    _convert(root / "series", tmp_path / "s.zarr", chunks={"y": 16, "x": 32})
    info = series_info(tmp_path / "s.zarr")
    assert info["layout"] == "series" and info["complete"] is True
    assert info["chunks"] == [20, 1, 16, 32]  # whole time series per chunk
    assert info["source"]["location"] == str(root / "series")
    ser = vz.open_series(tmp_path / "s.zarr")
    assert ser.data.chunksize[0] == SHAPE[0]  # each dask block holds whole series
    # the same as the image layout, transposed into series chunks
    images = vz.open_image(_image_layout(root, tmp_path))
    _assert_same_image(ser, images)
    np.testing.assert_allclose(ser.vox.series.mean_map().values, movie.mean(axis=0))


def _image_layout(root: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "images.zarr"
    _convert(root / "images", dest)
    return dest


def test_image_archives_stay_in_the_image_layout(fish, tmp_path):
    root, _ = fish
    _convert(root / "bin", tmp_path / "b.zarr")
    with pytest.raises(MetadataError, match="not a voxzarr series store"):
        vz.open_series(tmp_path / "b.zarr")


def test_two_dimensional_thunder_archives_agree(tmp_path):
    movie = np.random.default_rng(3).uniform(0, 1, (9, 13, 21)).astype("float32")  # t, y, x
    write_binary_images(tmp_path / "bin", movie)
    write_binary_series(tmp_path / "series", movie, block_rows=5)
    write_tiff_frames(tmp_path / "tif", movie)
    kw = {"voxel_size": 0.3, "unit": "um"}
    for name in ("bin", "series", "tif"):
        vz.convert(tmp_path / name, tmp_path / f"{name}.zarr", **kw)
    tif = vz.open_image(tmp_path / "tif.zarr")
    assert tif.dims == ("t", "y", "x") and tif.shape == movie.shape
    np.testing.assert_array_equal(tif.values, movie)
    _assert_same_image(tif, vz.open_image(tmp_path / "bin.zarr"))
    _assert_same_image(tif, vz.open_series(tmp_path / "series.zarr"))


def test_layout_choice(fish, tmp_path):
    root, movie = fish
    _convert(root / "series", tmp_path / "img.zarr", layout="image")
    with pytest.raises(MetadataError):
        vz.open_series(tmp_path / "img.zarr")
    np.testing.assert_array_equal(vz.open_image(tmp_path / "img.zarr").values, movie)
    _convert(root / "images", tmp_path / "ser.zarr", layout="series")  # any time-lapse
    np.testing.assert_array_equal(vz.open_series(tmp_path / "ser.zarr").values, movie)
    with pytest.warns(UserWarning, match="image layout because NGFF 0.4"):
        vz.convert(root / "series", tmp_path / "v04.zarr", version="0.4", **GEOMETRY)
    np.testing.assert_array_equal(vz.open_image(tmp_path / "v04.zarr").values, movie)
    with pytest.raises(ConversionError) as err:
        _convert(root / "series", tmp_path / "no.zarr", layout="series", pyramid=True)
    assert err.value.field == "layout" and not (tmp_path / "no.zarr").exists()
    with pytest.raises(ConversionError, match="layout must be"):
        _convert(root / "series", tmp_path / "no.zarr", layout="chunks")
    with pytest.raises(ConversionError, match="needs a time axis"):
        _convert(root / "images", tmp_path / "no.zarr", layout="series", axes="czyx")


def test_conf_axes_names_camera_stacks(tmp_path):
    """Raw stacks whose dims list x first (a camera's own files) say so with "axes"."""
    movie = np.random.default_rng(5).integers(0, 255, (3, 4, 6, 10)).astype("uint8")
    folder = tmp_path / "cam"
    folder.mkdir()
    for t, frame in enumerate(movie):  # C-order (z, y, x) bytes = Fortran order of (x, y, z)
        (folder / f"stack{t}.bin").write_bytes(frame.tobytes())
    conf = {"dims": [10, 6, 4], "dtype": "uint8", "axes": "xyz"}
    (folder / "conf.json").write_text(json.dumps(conf))
    vz.convert(folder, tmp_path / "c.zarr", voxel_size=1.0, unit="um")
    np.testing.assert_array_equal(vz.open_image(tmp_path / "c.zarr").values, movie)
    for bad in ("xy", "xyy", "abc", 3):
        (folder / "conf.json").write_text(json.dumps({**conf, "axes": bad}))
        with pytest.raises(ConversionError) as err:
            vz.convert(folder, tmp_path / "bad.zarr", voxel_size=1.0, unit="um")
        assert err.value.field == "axes"


def test_cli_converts_both_sources_alike(fish, tmp_path, capsys):
    root, movie = fish
    assert main(["convert", str(root / "bin"), str(tmp_path / "b.zarr"), *CLI_GEOMETRY]) == 0
    assert main(["convert", str(root / "series"), str(tmp_path / "s.zarr"),
                 *CLI_GEOMETRY]) == 0
    out = capsys.readouterr().out
    assert out.count("'y': 76, 'x': 87") == 2
    binary = vz.open_image(tmp_path / "b.zarr")
    series = vz.open_series(tmp_path / "s.zarr")
    np.testing.assert_array_equal(binary.values, movie)
    _assert_same_image(binary, series)
    assert main(["convert", str(root / "series"), str(tmp_path / "i.zarr"), "--layout",
                 "image", *CLI_GEOMETRY]) == 0
    _assert_same_image(series, vz.open_image(tmp_path / "i.zarr"))
    assert main(["convert", str(root / "series"), str(tmp_path / "x.zarr"), "--layout",
                 "series", "--pyramid", *CLI_GEOMETRY]) != 0
    assert "layout" in capsys.readouterr().err
