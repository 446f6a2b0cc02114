"""vz.convert on synthetic TIFF, ImageJ hyperstacks and OME-TIFF written with tifffile."""

from __future__ import annotations

import importlib
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.convert.tiff import spacing_from_resolution
from voxzarr.errors import ConversionError, OverwriteError


def _ramp(shape, dtype="uint16"):
    return (np.arange(np.prod(shape)) % 65521).astype(dtype).reshape(shape)


@pytest.fixture
def hyperstack(tmp_path: Path) -> tuple[Path, np.ndarray]:
    data = _ramp((3, 4, 2, 20, 30))  # TZCYX as ImageJ orders it
    path = tmp_path / "hs.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "TZCYX", "spacing": 1.5, "unit": "um",
                               "finterval": 2.5, "tunit": "ms"})
    return path, data


def test_imagej_hyperstack_geometry_and_pixels(hyperstack, tmp_path):
    path, data = hyperstack
    out = vz.convert(path, tmp_path / "hs.ome.zarr")
    img = vz.open_image(out)
    assert img.dims == ("t", "c", "z", "y", "x")
    assert img.shape == (3, 2, 4, 20, 30)
    assert img.vox.scale == {"t": 2.5, "z": 1.5, "y": 0.25, "x": 0.25}
    assert img.vox.units == {"t": "millisecond", "z": "micrometer", "y": "micrometer",
                             "x": "micrometer"}
    np.testing.assert_array_equal(img.values, data.transpose(0, 2, 1, 3, 4))
    assert vz.validate(out).valid


def test_ome_tiff_metadata(tmp_path):
    data = _ramp((3, 4, 2, 16, 24))
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "TZCYX", "PhysicalSizeX": 0.3, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 0.4, "PhysicalSizeYUnit": "nm", "PhysicalSizeZ": 1.25,
        "PhysicalSizeZUnit": "nm", "TimeIncrement": 2.0, "TimeIncrementUnit": "ms",
        "Channel": {"Name": ["GFP", "RFP"]}})
    img = vz.open_image(vz.convert(path, tmp_path / "o.zarr"))
    assert img.vox.scale == {"t": 2.0, "z": 1.25, "y": 0.4, "x": 0.3}
    assert set(img.vox.units.values()) == {"nanometer", "millisecond"}
    assert list(img.coords["c"].values) == ["GFP", "RFP"]
    np.testing.assert_array_equal(img.values, data.transpose(0, 2, 1, 3, 4))


def test_ome_tiff_default_units_are_micrometer_and_second(tmp_path):
    path = tmp_path / "d.ome.tif"
    tifffile.imwrite(path, _ramp((2, 8, 8)), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
                               "PhysicalSizeZ": 2.0})
    img = vz.open_image(vz.convert(path, tmp_path / "d.zarr"))
    assert img.vox.units == {"z": "micrometer", "y": "micrometer", "x": "micrometer"}
    assert img.vox.voxel_size == {"z": 2.0, "y": 0.5, "x": 0.5}


def test_plain_tiff_needs_and_takes_overrides(tmp_path):
    data = _ramp((6, 10, 12), "uint8")
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, data)  # tifffile names the page axis 'Q': unknown
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = vz.open_image(vz.convert(path, tmp_path / "a.zarr"))
    messages = " | ".join(str(w.message) for w in caught)
    assert "assuming 'z'" in messages and "no physical voxel size" in messages
    assert img.dims == ("z", "y", "x")
    out = vz.convert(path, tmp_path / "b.zarr", axes="tyx", voxel_size=(0.5, 0.5),
                     unit="um", time_interval=3)
    img = vz.open_image(out)
    assert img.dims == ("t", "y", "x")
    assert img.vox.scale == {"t": 3.0, "y": 0.5, "x": 0.5}
    assert img.vox.units == {"t": "second", "y": "micrometer", "x": "micrometer"}
    np.testing.assert_array_equal(img.values, data)


def test_user_values_override_file_metadata(hyperstack, tmp_path):
    path, _ = hyperstack
    out = vz.convert(path, tmp_path / "o.zarr", voxel_size={"z": 3.0, "x": 0.1},
                     unit="nm", time_interval=7.0, time_unit="s",
                     channel_names=["a", "b"])
    img = vz.open_image(out)
    assert img.vox.scale == {"t": 7.0, "z": 3.0, "y": 0.25, "x": 0.1}
    assert img.vox.units["x"] == "nanometer" and img.vox.units["t"] == "second"
    assert list(img.coords["c"].values) == ["a", "b"]


def test_rgb_samples_become_channel_axis(tmp_path):
    data = _ramp((2, 16, 20, 3), "uint8")
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, data, photometric="rgb", metadata={"axes": "ZYXS"})
    img = vz.open_image(vz.convert(path, tmp_path / "rgb.zarr", voxel_size=1, unit="um"))
    assert img.dims == ("c", "z", "y", "x")
    np.testing.assert_array_equal(img.values, data.transpose(3, 0, 1, 2))


def test_resolution_tags_in_centimeter(tmp_path):
    path = tmp_path / "cm.tif"
    # 10,000 pixels per cm = 1 micrometer per pixel
    tifffile.imwrite(path, _ramp((8, 8)), resolution=(10000, 20000), resolutionunit="CENTIMETER")
    img = vz.open_image(vz.convert(path, tmp_path / "cm.zarr"))
    assert img.vox.voxel_size == {"y": 0.5, "x": 1.0}
    assert img.vox.units == {"y": "micrometer", "x": "micrometer"}


def test_inch_resolution_is_ignored(tmp_path):
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(path, _ramp((8, 8)), resolution=(72, 72), resolutionunit="INCH")
    with pytest.warns(UserWarning, match="no physical voxel size"):
        img = vz.open_image(vz.convert(path, tmp_path / "dpi.zarr"))
    assert img.vox.voxel_size == {"y": 1.0, "x": 1.0}
    assert img.vox.units == {"y": None, "x": None}


def test_chunks_and_shards_are_written_as_asked(hyperstack, tmp_path):
    path, data = hyperstack
    out = vz.convert(path, tmp_path / "s.zarr", chunks=(1, 1, 2, 8, 8),
                     shards=(1, 1, 4, 16, 16))
    arr = zarr.open_group(out, mode="r")["0"]
    assert arr.chunks == (1, 1, 2, 8, 8)
    assert arr.shards == (1, 1, 4, 16, 16)
    np.testing.assert_array_equal(arr[:], data.transpose(0, 2, 1, 3, 4))


def test_ngff_04_output(hyperstack, tmp_path):
    path, data = hyperstack
    out = vz.convert(path, tmp_path / "v4.zarr", version="0.4")
    g = zarr.open_group(out, mode="r")
    assert g.metadata.zarr_format == 2
    assert g.attrs["multiscales"][0]["version"] == "0.4"
    np.testing.assert_array_equal(vz.open_image(out).values, data.transpose(0, 2, 1, 3, 4))


def test_imagej_metadata_contradicting_pages(tmp_path):
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, _ramp((5, 8, 8), "uint8"), metadata=None,
                     description="ImageJ=1.11a\nimages=50\nslices=50\nunit=um\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConversionError) as err:
            vz.convert(path, tmp_path / "bad.zarr")
    assert err.value.path == str(path)
    assert err.value.field == "ImageJ images/slices"
    assert not (tmp_path / "bad.zarr").exists()


def test_ome_metadata_contradicting_pages(tmp_path):
    good = tmp_path / "good.ome.tif"
    tifffile.imwrite(good, _ramp((3, 4, 8, 10)), ome=True, metadata={"axes": "TZYX"})
    with tifffile.TiffFile(good) as tif:
        xml = tif.ome_metadata.replace('SizeZ="4"', 'SizeZ="9"')
    bad = tmp_path / "bad.ome.tif"
    tifffile.imwrite(bad, _ramp((12, 8, 10)), description=xml, metadata=None)
    with pytest.raises(ConversionError) as err:
        vz.convert(bad, tmp_path / "bad.zarr")
    assert err.value.path == str(bad)
    assert err.value.field == "OME Pixels SizeZ/SizeC/SizeT"


def test_non_positive_spacing_is_refused(tmp_path):
    path = tmp_path / "neg.tif"
    tifffile.imwrite(path, _ramp((3, 8, 8), "uint8"), imagej=True,
                     metadata={"spacing": -2.0, "unit": "um"})
    with pytest.raises(ConversionError) as err:
        vz.convert(path, tmp_path / "neg.zarr")
    assert err.value.field == "ImageJ spacing"


def test_unknown_file_and_missing_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(ConversionError, match="cannot tell the format"):
        vz.convert(tmp_path / "x.png", tmp_path / "o.zarr")
    with pytest.raises(ConversionError, match="no such file"):
        vz.convert(tmp_path / "nope.tif", tmp_path / "o.zarr")
    (tmp_path / "broken.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ConversionError, match="not a readable TIFF"):
        vz.convert(tmp_path / "broken.tif", tmp_path / "o.zarr")


def test_wrong_axes_override(hyperstack, tmp_path):
    path, _ = hyperstack
    with pytest.raises(ConversionError) as err:
        vz.convert(path, tmp_path / "o.zarr", axes="tzyx")
    assert err.value.field == "axes"
    with pytest.raises(ConversionError, match="repeat"):
        vz.convert(path, tmp_path / "o.zarr", axes="tzzyx")


def test_overwrite_guard(hyperstack, tmp_path):
    path, _ = hyperstack
    out = tmp_path / "o.zarr"
    vz.convert(path, out)
    with pytest.raises(OverwriteError):
        vz.convert(path, out)
    vz.convert(path, out, overwrite=True, voxel_size={"z": 9.0})
    assert vz.open_image(out).vox.voxel_size["z"] == 9.0


def test_failed_write_leaves_nothing(hyperstack, tmp_path, monkeypatch):
    path, _ = hyperstack
    w = importlib.import_module("voxzarr.convert.write")

    def broken(expected, location, **kw):
        raise ConversionError("simulated mismatch", path=location, field="data")

    monkeypatch.setattr(w, "verify_image", broken)
    with pytest.raises(ConversionError, match="simulated"):
        vz.convert(path, tmp_path / "o.zarr")
    assert list(tmp_path.iterdir()) == [path]  # no output, no hidden partial folder


def test_interrupted_convert_leaves_nothing(tmp_path, monkeypatch):
    data = _ramp((16, 32, 32))
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX", "unit": "um"})
    tiff_mod = importlib.import_module("voxzarr.convert.tiff")
    real = tiff_mod.read_region
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        time.sleep(0.2)  # other tasks are still writing when the failure surfaces
        return real(*args)

    monkeypatch.setattr(tiff_mod, "read_region", flaky)
    with pytest.raises(KeyboardInterrupt):
        vz.convert(path, tmp_path / "o.zarr", chunks=(2, 32, 32))
    time.sleep(0.5)
    assert list(tmp_path.iterdir()) == [path]


def test_cli_convert(hyperstack, tmp_path, capsys):
    path, data = hyperstack
    out = tmp_path / "cli.zarr"
    rc = main(["convert", str(path), str(out), "--voxel-size", "z=2", "--chunks", "8",
               "--no-progress"])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    img = vz.open_image(out)
    assert img.vox.voxel_size == {"z": 2.0, "y": 0.25, "x": 0.25}
    assert main(["convert", str(path), str(out)]) == 1  # exists: error, not a traceback
    assert "already exists" in capsys.readouterr().err


def _digits(x: float) -> int:
    return len(f"{x:.15g}".split("e")[0].replace(".", "").replace("-", "").strip("0"))


# ImageJ stores 1/spacing truncated to a rational over 10**6
@settings(max_examples=80, deadline=None)
@given(st.integers(1, 9999), st.integers(-7, 1))
def test_spacing_from_imagej_rational(mantissa, exp):
    spacing = float(f"{mantissa}e{exp}")
    num = int(1e6 / spacing)
    if num < 1:
        return
    got = spacing_from_resolution((num, 1_000_000))
    assert abs(1e6 / got - num) < 1.0  # consistent with what the file stores
    assert _digits(got) <= _digits(spacing)  # never longer than the true value
    if num >= 100_000 and _digits(spacing) <= 3:
        assert got == spacing  # tight rational, short value: recovered exactly


def test_spacing_from_exact_rationals():
    assert spacing_from_resolution((4, 1)) == 0.25
    assert spacing_from_resolution((3, 1)) == 1 / 3  # small denominators are taken as they are
    assert spacing_from_resolution((666666, 1_000_000)) == 1.5
    with pytest.raises(ValueError):
        spacing_from_resolution((0, 1))


def _corrupt_page(path: Path, page: int) -> None:
    """Overwrite the compressed data of one page with zeros (it no longer decodes)."""
    with tifffile.TiffFile(path) as tif:
        p = tif.pages[page]
        offset, size = p.dataoffsets[0], p.databytecounts[0]
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\0" * size)


def test_corrupt_page_is_a_conversion_error_naming_the_file(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, _ramp((8, 16, 16)), compression="zlib")
    _corrupt_page(path, 5)
    with pytest.raises(ConversionError, match=r"cannot read or decode the pixels \[") as err:
        vz.convert(path, tmp_path / "o.zarr", axes="zyx", voxel_size=1.0, chunks=(2, 16, 16))
    assert err.value.path == str(path) and err.value.field == "pixels"
    assert list(tmp_path.iterdir()) == [path]


def test_corrupt_frame_is_a_conversion_error_naming_the_frame(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        tifffile.imwrite(folder / f"f{i}.tif", _ramp((3, 8, 8)), compression="zlib",
                         photometric="minisblack")
    _corrupt_page(folder / "f2.tif", 1)
    with pytest.raises(ConversionError, match="cannot read or decode") as err:
        vz.convert(folder, tmp_path / "o.zarr", axes="tzyx", voxel_size=1.0)
    assert err.value.path == str(folder / "f2.tif") and err.value.field == "pixels"
