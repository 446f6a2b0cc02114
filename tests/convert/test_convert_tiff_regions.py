"""Large TIFF pages are read by region: only the bytes or segments a task needs."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import voxzarr as vz
from voxzarr.convert import tiff as vt

LAYOUTS = {
    "contiguous": {},
    "big-endian": {"byteorder": ">"},
    "strips-zlib": {"compression": "zlib", "rowsperstrip": 16},
    "tiles-zlib": {"compression": "zlib", "tile": (32, 32)},
}


@pytest.fixture
def small_region_bytes(monkeypatch):
    """Treat every page as large, so small test files take the region path."""
    monkeypatch.setattr(vt, "PAGE_REGION_BYTES", 1)


@pytest.fixture
def no_whole_page_reads(monkeypatch):
    """Fail any whole-page decode: the region path must not need one."""
    def refuse(*args, **kwargs):
        raise AssertionError("a whole page was decoded")

    monkeypatch.setattr(tifffile.TiffFile, "asarray", refuse)


def _pixels(shape, dtype="uint16"):
    rng = np.random.default_rng(7)
    return rng.integers(0, 4000, size=shape).astype(dtype)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_single_page_region(tmp_path, layout, small_region_bytes, no_whole_page_reads):
    a = _pixels((150, 130))
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, a, **LAYOUTS[layout])
    with tifffile.TiffFile(path) as tif:
        shape, _, npa = vt.series_layout(tif.series[0])
        assert npa == 0
        for key in [(slice(10, 47), slice(100, 130)), (slice(0, 150), slice(3, 4)),
                    (slice(149, 150), slice(0, 130))]:
            got = vt.read_region(tif, 0, shape, npa, key)
            np.testing.assert_array_equal(got, a[key])
            assert got.dtype == a.dtype and got.dtype.isnative


@pytest.mark.parametrize("layout", ["contiguous", "strips-zlib"])
def test_page_stack_region(tmp_path, layout, small_region_bytes, no_whole_page_reads):
    a = _pixels((4, 3, 64, 48))
    path = tmp_path / "hs.tif"
    kw = dict(LAYOUTS[layout])
    kw.pop("tile", None)
    tifffile.imwrite(path, a, imagej=True, metadata={"axes": "ZCYX"}, **kw)
    with tifffile.TiffFile(path) as tif:
        shape, _, npa = vt.series_layout(tif.series[0])
        assert shape == a.shape and npa == 2
        key = (slice(1, 3), slice(0, 3), slice(5, 40), slice(17, 48))
        np.testing.assert_array_equal(vt.read_region(tif, 0, shape, npa, key), a[key])


def test_small_pages_are_decoded_whole(tmp_path, no_whole_page_reads):
    a = _pixels((40, 30))
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, a, compression="zlib", rowsperstrip=8)
    with tifffile.TiffFile(path) as tif, pytest.raises(AssertionError, match="whole page"):
        shape, _, npa = vt.series_layout(tif.series[0])
        vt.read_region(tif, 0, shape, npa, (slice(0, 5), slice(0, 5)))


@pytest.mark.parametrize("layout", ["contiguous", "tiles-zlib"])
def test_convert_large_single_page_by_tasks(tmp_path, layout, small_region_bytes, monkeypatch):
    """A page larger than one write task is converted task by task, equal to the input."""
    from voxzarr.convert import write

    monkeypatch.setattr(write, "TASK_BYTES", 64 * 64 * 2)  # several tasks for one page
    seen: list = []
    real = vt.page_part

    def spy(tif, series, index, page_shape, crop):
        seen.append(tuple(crop))
        return real(tif, series, index, page_shape, crop)

    monkeypatch.setattr(vt, "page_part", spy)
    a = _pixels((200, 192))
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, a, **LAYOUTS[layout])
    out = vz.convert(path, tmp_path / "slide.ome.zarr", axes="yx", voxel_size=(0.5, 0.5),
                     unit="micrometer", chunks=64)
    img = vz.open_image(out)
    np.testing.assert_array_equal(img.values, a)
    assert seen and all(c != (slice(0, 200), slice(0, 192)) for c in seen)  # never whole
