"""vz.convert on folders of frames: TIFF, raw binary (Thunder images) and Thunder series."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.convert.source import natural_key
from voxzarr.errors import ConversionError


def _movie(shape, dtype="uint16", seed=0):
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(dtype)


def test_natural_order():
    names = ["frame10.tif", "frame2.tif", "frame1.tif", "Frame3.tif", "frame02b.tif"]
    assert sorted(names, key=natural_key) == ["frame1.tif", "frame2.tif", "frame02b.tif",
                                              "Frame3.tif", "frame10.tif"]


def test_tiff_frame_folder(tmp_path):
    movie = _movie((12, 3, 10, 14))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(movie):  # unpadded numbers: only a natural sort gets this right
        tifffile.imwrite(folder / f"frame{i}.tif", frame, imagej=True,
                         resolution=(2.0, 2.0),
                         metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"})
    (folder / "notes.txt").write_text("not a frame")
    out = vz.convert(folder, tmp_path / "m.zarr", time_interval=0.5, chunks=(2, 2, 8, 8))
    img = vz.open_image(out)
    assert img.dims == ("t", "z", "y", "x") and img.shape == movie.shape
    assert img.vox.scale == {"t": 0.5, "z": 3.0, "y": 0.5, "x": 0.5}
    np.testing.assert_array_equal(img.values, movie)


def test_frame_list_and_z_stacking(tmp_path):
    planes = _movie((5, 9, 11), "uint8")
    files = []
    for i, p in enumerate(planes):
        files.append(tmp_path / f"p{i:02d}.tif")
        tifffile.imwrite(files[-1], p)
    out = vz.convert(files, tmp_path / "z.zarr", axes="zyx", voxel_size=(2.0, 0.5, 0.5),
                     unit="um")
    img = vz.open_image(out)
    assert img.dims == ("z", "y", "x")
    np.testing.assert_array_equal(img.values, planes)


def test_mismatched_frame_names_the_file(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    tifffile.imwrite(folder / "t1.tif", _movie((8, 8)))
    tifffile.imwrite(folder / "t2.tif", _movie((8, 8)))
    tifffile.imwrite(folder / "t10.tif", _movie((8, 9)))
    with pytest.raises(ConversionError) as err:
        vz.convert(folder, tmp_path / "o.zarr")
    assert err.value.path == str(folder / "t10.tif") and err.value.field == "shape"
    tifffile.imwrite(folder / "t10.tif", _movie((8, 8), "uint8"))
    with pytest.raises(ConversionError) as err:
        vz.convert(folder, tmp_path / "o.zarr")
    assert err.value.path == str(folder / "t10.tif") and err.value.field == "dtype"
    assert not (tmp_path / "o.zarr").exists()


def test_empty_folder(tmp_path):
    with pytest.raises(ConversionError, match="no frame files"):
        vz.convert(tmp_path, tmp_path / "o.zarr")


#: Thunder's array axes (y, x[, z]) as indices into voxzarr's (z, y, x) / (y, x) / (x,)
_THUNDER_ORDER = {1: [0], 2: [0, 1], 3: [1, 2, 0]}


def _write_thunder_images(folder: Path, movie: np.ndarray) -> None:
    """Thunder images: each frame as Thunder holds it, (y, x[, z]) (TIFF rows, columns,
    pages), conf ``dims`` its shape, its bytes in Fortran order."""
    folder.mkdir()
    order = _THUNDER_ORDER[movie.ndim - 1]
    dims = [movie.shape[1:][i] for i in order]
    (folder / "conf.json").write_text(json.dumps({"dims": dims, "dtype": str(movie.dtype)}))
    for i, frame in enumerate(movie):
        thunder = frame.transpose(order)
        (folder / f"image-{i:05d}.bin").write_bytes(thunder.tobytes(order="F"))


def test_raw_thunder_image_frames(tmp_path):
    movie = _movie((6, 4, 10, 12), "int16")
    _write_thunder_images(tmp_path / "raw", movie)
    (tmp_path / "raw" / "SUCCESS").write_text("")
    out = vz.convert(tmp_path / "raw", tmp_path / "r.zarr", voxel_size=(2, 1, 1), unit="um",
                     time_interval=0.1)
    img = vz.open_image(out)
    assert img.dims == ("t", "z", "y", "x") and img.dtype == np.int16
    assert img.vox.scale == {"t": 0.1, "z": 2.0, "y": 1.0, "x": 1.0}
    np.testing.assert_array_equal(img.values, movie)


def test_raw_frame_of_wrong_size(tmp_path):
    movie = _movie((3, 6, 7), "uint16")
    _write_thunder_images(tmp_path / "raw", movie)
    bad = tmp_path / "raw" / "image-00001.bin"
    bad.write_bytes(bad.read_bytes()[:-2])
    with pytest.raises(ConversionError) as err:
        vz.convert(tmp_path / "raw", tmp_path / "o.zarr", voxel_size=1, unit="um")
    assert err.value.path == str(bad) and err.value.field == "shape"


def test_raw_conf_errors(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"\0" * 8)
    (folder / "conf.json").write_text("{not json")
    with pytest.raises(ConversionError, match="does not parse"):
        vz.convert(folder, tmp_path / "o.zarr")
    (folder / "conf.json").write_text(json.dumps({"dims": [2, -2], "dtype": "uint8"}))
    with pytest.raises(ConversionError) as err:
        vz.convert(folder, tmp_path / "o.zarr")
    assert err.value.field == "dims"
    (folder / "conf.json").write_text(json.dumps({"dims": [2, 2], "dtype": "complex"}))
    with pytest.raises(ConversionError) as err:
        vz.convert(folder, tmp_path / "o.zarr")
    assert err.value.field == "dtype"


def _write_thunder_series(folder: Path, movie: np.ndarray, block: int, rng) -> None:
    """Thunder 0.x binary series: records of int16 (y, x, z) keys then the T values, in
    spatial blocks written to separate files in shuffled order."""
    folder.mkdir()
    t = movie.shape[0]
    spatial = movie.shape[1:]
    record = np.dtype([("k", "<i2", (len(spatial),)), ("v", movie.dtype, (t,))])
    starts = [range(0, n, block) for n in spatial]
    blocks = [tuple(s) for s in np.array(np.meshgrid(*starts, indexing="ij")).reshape(
        len(spatial), -1).T]
    rng.shuffle(blocks)
    for b, start in enumerate(blocks):
        sl = tuple(slice(s, s + block) for s in start)
        idx = np.indices(movie[(slice(None), *sl)].shape[1:]).reshape(len(spatial), -1).T
        idx = idx + np.array(start)
        rng.shuffle(idx)
        recs = np.zeros(len(idx), record)
        recs["k"] = idx[:, _THUNDER_ORDER[len(spatial)]]  # keys index Thunder's array
        recs["v"] = movie[(slice(None), *tuple(idx.T))].T
        (folder / f"key-{b:03d}.bin").write_bytes(recs.tobytes())
    (folder / "conf.json").write_text(json.dumps({
        "input": "x", "nkeys": len(spatial), "nvalues": t, "keytype": "int16",
        "valuetype": str(movie.dtype)}))
    (folder / "SUCCESS").write_text("")


@settings(max_examples=8, deadline=None)
@given(st.tuples(st.integers(2, 9), st.integers(1, 5), st.integers(3, 11), st.integers(3, 11)),
       st.integers(2, 6), st.sampled_from(["int16", "float32"]), st.integers(0, 2**16))
def test_thunder_series_round_trip(tmp_path_factory, shape, block, dtype, seed):
    rng = np.random.default_rng(seed)
    movie = rng.integers(-300, 300, shape).astype(dtype)
    tmp = tmp_path_factory.mktemp("thunder")
    _write_thunder_series(tmp / "series", movie, block, rng)
    out = vz.convert(tmp / "series", tmp / "s.zarr", voxel_size=1.0, unit="um")
    img = vz.open_image(out)
    assert img.dims == ("t", "z", "y", "x") and img.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(img.values, movie)


def test_thunder_series_errors(tmp_path):
    rng = np.random.default_rng(1)
    movie = _movie((4, 2, 5, 5), "int16")
    _write_thunder_series(tmp_path / "s", movie, 5, rng)
    first = sorted((tmp_path / "s").glob("*.bin"))[0]
    data = first.read_bytes()
    first.write_bytes(data + data[:3])  # a torn record
    with pytest.raises(ConversionError) as err:
        vz.convert(tmp_path / "s", tmp_path / "o.zarr", voxel_size=1, unit="um")
    assert err.value.path == str(first) and err.value.field == "nvalues"
    first.write_bytes(data + data[: 3 * 2 + 4 * 2])  # a whole repeated record
    with pytest.raises(ConversionError, match="repeat a key"):
        vz.convert(tmp_path / "s", tmp_path / "o.zarr", voxel_size=1, unit="um")


def test_thunder_series_without_success_warns(tmp_path):
    movie = _movie((3, 1, 4, 4), "int16")
    _write_thunder_series(tmp_path / "s", movie, 4, np.random.default_rng(2))
    (tmp_path / "s" / "SUCCESS").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vz.convert(tmp_path / "s", tmp_path / "o.zarr", voxel_size=1, unit="um")
    assert any("SUCCESS" in str(w.message) for w in caught)


def _write_ordered_series(folder: Path, movie: np.ndarray, n_files: int = 2) -> None:
    """Thunder series whose records follow the voxel order (x fastest), over ``n_files``."""
    folder.mkdir()
    t, spatial = movie.shape[0], movie.shape[1:]
    record = np.dtype([("k", "<i2", (len(spatial),)), ("v", movie.dtype, (t,))])
    recs = np.zeros(int(np.prod(spatial)), record)
    recs["k"] = np.indices(spatial).reshape(len(spatial), -1).T[:, _THUNDER_ORDER[len(spatial)]]
    recs["v"] = movie.reshape(t, -1).T
    for i, part in enumerate(np.array_split(recs, n_files)):
        (folder / f"key-{i:03d}.bin").write_bytes(part.tobytes())
    (folder / "conf.json").write_text(json.dumps({
        "nkeys": len(spatial), "nvalues": t, "keytype": "int16",
        "valuetype": str(movie.dtype)}))
    (folder / "SUCCESS").write_text("")


def test_readers_pickle_small_and_read_the_same(tmp_path, monkeypatch):
    """Every reader travels to dask.distributed workers by pickle: it pickles to its
    (absolute) file names and layout, never pixels, and reads the same afterwards."""
    import pickle

    from voxzarr.convert import read_source

    movie = _movie((6, 4, 32, 32), "int16")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(movie):
        tifffile.imwrite(frames / f"f{i}.tif", frame, photometric="minisblack")
    _write_thunder_images(tmp_path / "raw", movie)
    _write_ordered_series(tmp_path / "series", movie)
    tifffile.imwrite(tmp_path / "pages.tif", movie[:, 0])
    monkeypatch.chdir(tmp_path)  # relative names below; a worker may run elsewhere
    key = (slice(1, 5), slice(0, 3), slice(5, 30), slice(7, 9))
    thunder = movie.transpose(0, 1, 3, 2)  # Thunder readers: (t, z, x, y), bytes' C order
    for source, want, limit in [("frames", movie, 2_000), ("raw", thunder, 2_000),
                                ("series", thunder, 2_000), ("pages.tif", movie[:, 0], 1_000)]:
        reader = read_source(source).reader
        blob = pickle.dumps(reader)
        assert len(blob) < limit, (source, len(blob))  # raw index alone: 32 KiB
        monkeypatch.chdir("/")
        again = pickle.loads(blob)
        np.testing.assert_array_equal(again[key[:want.ndim]], want[key[:want.ndim]])
        monkeypatch.chdir(tmp_path)


def test_thunder_reader_pickles_any_record_order(tmp_path):
    """Shuffled records (and voxels without a record) survive the compressed index."""
    import pickle

    from voxzarr.convert import read_source

    movie = _movie((5, 3, 11, 9), "int16")
    _write_thunder_series(tmp_path / "s", movie, 4, np.random.default_rng(3))
    reader = read_source(tmp_path / "s").reader
    reader.index[0, 0, :3] = -1  # as if those records were missing
    again = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(again.index, reader.index)
    np.testing.assert_array_equal(again[:, :, 2:9, 1:8], reader[:, :, 2:9, 1:8])
