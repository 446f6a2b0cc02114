"""Registries: pyramid methods and archive readers added by name, or by entry points."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import dask.array as da
import numpy as np
import pytest

import voxzarr as vz
from voxzarr import _downsample
from voxzarr._registry import PYRAMID_METHODS, PyramidMethod, register_pyramid_method
from voxzarr.convert import read_source
from voxzarr.convert.readers import ARCHIVE_READERS, ArchiveReader, register_archive_reader
from voxzarr.convert.source import Source
from voxzarr.errors import ConversionError, DependencyError, PyramidError
from voxzarr.pyramid import add_levels, plan_pyramid

BUILTIN_METHODS = ("mean", "gaussian", "nearest", "mode", "min", "max", "median")


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Each test registers into copies of the registries; the originals come back after."""
    for reg in (PYRAMID_METHODS, ARCHIVE_READERS):
        monkeypatch.setattr(reg, "_entries", dict(reg._entries))
        monkeypatch.setattr(reg, "_discovered", reg._discovered)


def _first(x, factors, xp):
    """the first voxel of each block"""
    return x[tuple(slice(None, None, k) for k in factors)].copy()


def _spread(x, factors, xp):
    """max - min of each block (new values: not for labels)"""
    return (_downsample.reduce_block(x, factors, "max")
            - _downsample.reduce_block(x, factors, "min"))


def _image(shape=(6, 10, 12), chunks=(3, 4, 5), dtype="uint16"):
    data = np.arange(np.prod(shape), dtype=dtype).reshape(shape) * 7 % 1000
    img = vz.from_array(data, dims="zyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5})
    return img.chunk(dict(zip("zyx", chunks, strict=True))), data


# ----------------------------------------------------------------------------- pyramid methods
def test_builtin_methods_are_registered_in_order():
    assert tuple(_downsample.METHODS) == BUILTIN_METHODS
    assert _downsample.METHODS == BUILTIN_METHODS
    assert set(_downsample.LABEL_METHODS) == {"mode", "nearest", "min", "max"}
    assert repr(_downsample.METHODS) == repr(BUILTIN_METHODS)
    assert PYRAMID_METHODS.get("mean").kernel == "voxzarr._downsample:_mean"  # lazy


def test_a_registered_method_builds_pyramid_levels():
    spec = register_pyramid_method("first", _first, labels=True, summary="first voxel")
    assert spec == PyramidMethod("first", _first, True, "first voxel")
    assert "first" in _downsample.METHODS and "first" in _downsample.LABEL_METHODS
    img, data = _image()
    tree = img.vox.pyramid(levels=3, method="first", factors=2)
    assert tree["1"].ds["image"].shape == (3, 5, 6)
    np.testing.assert_array_equal(tree["1"].ds["image"].values, data[::2, ::2, ::2])
    np.testing.assert_array_equal(tree["2"].ds["image"].values, data[::4, ::4, ::4])
    # block placement: the first voxel centre of level 1 is the centre of the first block
    assert float(tree["1"].ds["image"].x[0]) == pytest.approx(0.25)


def test_a_registered_method_writes_and_adds_levels(tmp_path):
    register_pyramid_method("spread", _spread)
    img, data = _image()
    path = tmp_path / "a.ome.zarr"
    img.vox.to_ome_zarr(path, pyramid={"method": "spread", "levels": 2, "factors": 2})
    want = data.reshape(3, 2, 5, 2, 6, 2).max(axis=(1, 3, 5)) - \
        data.reshape(3, 2, 5, 2, 6, 2).min(axis=(1, 3, 5))
    np.testing.assert_array_equal(vz.open_image(path, level=1).values, want)

    other = tmp_path / "b.ome.zarr"
    img.vox.to_ome_zarr(other)
    add_levels(other, levels=2, method="spread", factors=2)
    np.testing.assert_array_equal(vz.open_image(other, level=1).values, want)


def test_label_and_bool_images_need_label_methods():
    register_pyramid_method("spread", _spread)
    img, _ = _image()
    with pytest.raises(PyramidError, match="can create values that are not labels"):
        plan_pyramid(img, 2, "spread", label=True)
    with pytest.raises(PyramidError, match="cannot reduce a bool image"):
        plan_pyramid(img > 3, 2, "spread")
    register_pyramid_method("first", _first, labels=True)
    assert plan_pyramid(img > 3, 2, "first", label=True).method == "first"


def test_a_kernel_of_the_wrong_shape_is_named():
    register_pyramid_method("bad", lambda x, f, xp: x)
    with pytest.raises(PyramidError, match="kernel of method 'bad' returned shape"):
        _downsample.reduce_block(np.zeros((4, 4), "uint8"), (2, 2), "bad")


def test_duplicate_and_unknown_methods_are_clear():
    with pytest.raises(PyramidError, match="'mean' is registered already"):
        register_pyramid_method("mean", _first)
    with pytest.raises(PyramidError, match="another spelling"):
        register_pyramid_method("stride", _first)
    with pytest.raises(PyramidError, match="kernel must be a function"):
        register_pyramid_method("x", 3)
    register_pyramid_method("first", _first)
    register_pyramid_method("first", _spread, replace=True)
    assert PYRAMID_METHODS.get("first").kernel is _spread
    img, _ = _image()
    with pytest.raises(PyramidError, match=r"unknown method 'nope'.*'median', 'first'\)"):
        plan_pyramid(img, 2, "nope")
    with pytest.raises(PyramidError, match="no pyramid method registered as 'nope'; "
                       "registered: mean, gaussian"):
        PYRAMID_METHODS.get("nope")
    PYRAMID_METHODS.unregister("first")
    assert "first" not in _downsample.METHODS
    with pytest.raises(PyramidError, match="no pyramid method registered as 'first'"):
        PYRAMID_METHODS.unregister("first")


# ----------------------------------------------------------------------------- archive readers
def _open_npy(path, *, series=0):
    data = np.load(path, mmap_mode="r")
    return Source(data=da.from_array(data, chunks=(2, -1, -1)), axes="zyx", path=str(path),
                  scale={"z": 3.0, "y": 0.25, "x": 0.25},
                  units={d: "micrometer" for d in "zyx"})


@pytest.fixture
def npy(tmp_path):
    data = np.arange(5 * 6 * 7, dtype="int16").reshape(5, 6, 7)
    path = tmp_path / "stack.NPY"
    np.save(tmp_path / "stack.npy", data)
    (tmp_path / "stack.npy").rename(path)
    return path, data


def test_a_registered_reader_converts_a_new_format(npy, tmp_path):
    path, data = npy
    with pytest.raises(ConversionError, match="cannot tell the format of 'stack.NPY'"):
        read_source(path)
    spec = register_archive_reader("npy", _open_npy, suffixes=".npy", summary="numpy files")
    assert spec.suffixes == (".npy",) and isinstance(spec, ArchiveReader)
    dest = tmp_path / "out.ome.zarr"
    vz.convert(path, dest, progress=False)
    img = vz.open_image(dest)
    np.testing.assert_array_equal(img.values, data)
    assert img.vox.geometry.scale == {"z": 3.0, "y": 0.25, "x": 0.25}
    assert img.vox.geometry.units["x"] == "micrometer"


def test_a_sniffing_reader_comes_before_the_builtins(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    data = np.ones((2, 3, 4), "uint8")
    np.save(folder / "volume.npy", data)
    with pytest.raises(ConversionError, match="no frame files found"):
        read_source(folder)  # the built-in folder reader: TIFF frames
    register_archive_reader("npy-folder", lambda p, series=0: _open_npy(p / "volume.npy"),
                            sniff=lambda p: (p / "volume.npy").is_file())
    np.testing.assert_array_equal(read_source(folder).data.compute(), data)


def test_readers_are_checked_and_listed(npy):
    path, _ = npy
    register_archive_reader("liar", lambda p, series=0: "not a source", suffixes=(".npy",))
    with pytest.raises(ConversionError, match="'liar' returned a str"):
        read_source(path)
    with pytest.raises(ConversionError, match="'tiff' is registered already"):
        register_archive_reader("tiff", _open_npy, suffixes=(".tif",))
    with pytest.raises(ConversionError, match="claims nothing"):
        register_archive_reader("nothing", _open_npy)
    ARCHIVE_READERS.unregister("liar")
    with pytest.raises(ConversionError) as err:
        read_source(path)
    msg = str(err.value)
    assert "cannot tell the format of 'stack.NPY'" in msg
    for name in ("tiff-frames", "tiff", "raw", "thunder"):
        assert f" {name}: " in msg


def test_builtin_readers_claim_their_paths(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "a.ome.tif", np.zeros((2, 4, 4), "uint8"))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "conf.json").write_text('{"dims": [4, 4], "dtype": "uint8"}')
    thunder = tmp_path / "thunder"
    thunder.mkdir()
    (thunder / "conf.json").write_text('{"nkeys": 2, "nvalues": 3}')
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "conf.json").write_text("{")
    from voxzarr.convert.readers import find_reader

    assert find_reader(tmp_path / "a.ome.tif").name == "tiff"
    assert find_reader(raw).name == "raw"
    assert find_reader(thunder).name == "thunder"
    assert find_reader(broken).name == "raw"  # which reports the conf.json that does not parse
    assert find_reader(tmp_path).name == "tiff-frames"
    with pytest.raises(ConversionError, match="conf.json does not parse"):
        read_source(broken)


# ----------------------------------------------------------------------------- entry points
@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A package ``vzplugin`` on sys.path, announced through fake entry points."""
    (tmp_path / "vzplugin.py").write_text(textwrap.dedent("""
        import dask.array as da
        import numpy as np

        from voxzarr._registry import PyramidMethod
        from voxzarr.convert.readers import ArchiveReader
        from voxzarr.convert.source import Source

        def halve(x, factors, xp):
            "every block's first voxel, halved"
            return x[tuple(slice(None, None, k) for k in factors)] // 2

        FIRST = PyramidMethod("ignored", lambda x, f, xp: x[::f[0], ::f[1]].copy(), True)

        def _open(path, *, series=0):
            data = np.frombuffer(path.read_bytes(), "uint8").reshape(4, -1)
            return Source(data=da.from_array(data), axes="yx", path=str(path))

        READER = ArchiveReader("ignored", _open, suffixes=(".vzp",))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "vzplugin", raising=False)
    eps = {
        "voxzarr.pyramid_methods": [
            importlib.metadata.EntryPoint("halve", "vzplugin:halve", "voxzarr.pyramid_methods"),
            importlib.metadata.EntryPoint("first", "vzplugin:FIRST", "voxzarr.pyramid_methods"),
            importlib.metadata.EntryPoint("broken", "vzplugin:nothing_here",
                                          "voxzarr.pyramid_methods"),
        ],
        "voxzarr.archive_readers": [
            importlib.metadata.EntryPoint("vzp", "vzplugin:READER", "voxzarr.archive_readers"),
        ],
    }
    calls = []

    def entry_points(*, group):
        calls.append(group)
        return eps.get(group, [])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    for reg in (PYRAMID_METHODS, ARCHIVE_READERS):
        monkeypatch.setattr(reg, "_discovered", False)
    return calls, eps


def test_entry_point_methods_are_found_lazily(plugin):
    calls, _ = plugin
    assert calls == []  # nothing looked up yet
    assert "halve" in _downsample.METHODS
    assert calls == ["voxzarr.pyramid_methods"]
    assert "vzplugin" not in sys.modules  # names are known without importing the plugin
    img = vz.from_array(np.arange(16, dtype="uint8").reshape(4, 4) * 3, dims="yx")
    tree = img.vox.pyramid(levels=2, method="halve", factors=2)
    assert "vzplugin" in sys.modules
    np.testing.assert_array_equal(tree["1"].ds["image"].values, img.values[::2, ::2] // 2)
    spec = PYRAMID_METHODS.get("halve")
    assert (spec.labels, spec.summary) == (False, "every block's first voxel, halved")
    first = PYRAMID_METHODS.get("first")  # a PyramidMethod, named by its entry point
    assert (first.name, first.labels) == ("first", True)
    with pytest.warns(RuntimeWarning, match="'broken'.*left out"):  # the others still work
        assert "first" in _downsample.LABEL_METHODS
    assert calls == ["voxzarr.pyramid_methods"]  # discovered once


def test_a_broken_entry_point_is_named(plugin):
    with pytest.raises(DependencyError, match="'broken'.*vzplugin:nothing_here"):
        PYRAMID_METHODS.get("broken")


def test_entry_points_never_replace_registered_names(plugin):
    _, eps = plugin
    eps["voxzarr.pyramid_methods"].append(
        importlib.metadata.EntryPoint("mean", "vzplugin:halve", "voxzarr.pyramid_methods"))
    with pytest.warns(RuntimeWarning, match="mean = vzplugin:halve .* ignored"):
        PYRAMID_METHODS.names()
    assert PYRAMID_METHODS.get("mean").kernel == "voxzarr._downsample:_mean"


def test_entry_point_readers_convert(plugin, tmp_path):
    path = tmp_path / "img.vzp"
    path.write_bytes(bytes(range(24)))
    src = read_source(path)
    np.testing.assert_array_equal(src.data.compute(), np.arange(24, dtype="uint8").reshape(4, 6))
    assert ARCHIVE_READERS.get("vzp").name == "vzp"
    dest = tmp_path / "img.ome.zarr"
    with pytest.warns(UserWarning, match="no physical voxel size"):
        vz.convert(path, dest, progress=False)
    np.testing.assert_array_equal(vz.open_image(dest).values, src.data.compute())
