"""Plates and bioformats2raw layouts: which image opens by default, and ``info`` listing all.

Opening a container without saying which image keeps working (the first) but warns, naming
the image and how to pick another; ``info`` lists every well, field and series with its
shape and dtype. Real data: the ome-zarr-py bioformats2raw stores in tests/data (0.4, zarr
v2); a 0.5 plate of 3 wells x 2 fields with different shapes is written here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.inspect import format_info

WELLS = ("A/1", "A/2", "B/1")


def _field_image(well: int, field: int) -> xr.DataArray:
    shape = (2, 6 + 2 * field, 8)  # fields differ in shape, wells in content
    data = (np.arange(np.prod(shape)) + 100 * well + 10 * field).astype("uint16").reshape(shape)
    return vz.from_array(data, "zyx", voxel_size={"z": 1.0, "y": 0.5, "x": 0.5})


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NGFF 0.5 plate: wells A/1, A/2, B/1, two fields each (field 1 taller)."""
    path = tmp_path_factory.mktemp("plate") / "plate.zarr"
    root = zarr.open_group(path, mode="w", zarr_format=3)
    root.attrs["ome"] = {"version": "0.5", "plate": {
        "name": "test plate", "field_count": 2,
        "rows": [{"name": "A"}, {"name": "B"}], "columns": [{"name": "1"}, {"name": "2"}],
        "wells": [{"path": w, "rowIndex": "AB".index(w[0]), "columnIndex": int(w[2]) - 1}
                  for w in WELLS]}}
    for row in "AB":  # row groups, as NGFF asks (before the wells: mode "w" empties them)
        zarr.open_group(path / row, mode="w", zarr_format=3)
    for i, well in enumerate(WELLS):
        group = zarr.open_group(path / well, mode="w", zarr_format=3)
        group.attrs["ome"] = {"version": "0.5",
                              "well": {"images": [{"path": "0"}, {"path": "1"}]}}
        for field in (0, 1):
            _field_image(i, field).vox.to_ome_zarr(path / well / str(field))
    return path


def _bf2raw(data_dir: Path, name: str) -> Path:
    return data_dir / "ome-zarr" / "v0.4-bioformats2raw" / name


def _no_warning(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- warnings
def test_plate_default_warns_and_opens_first(plate):
    msg = (r"opened well 'A/1' field 0 of plate .*plate\.zarr \(3 wells; 2 fields in 'A/1'\); "
           r"pick another with well='A/2', field=1")
    with pytest.warns(UserWarning, match=msg) as rec:
        img = vz.open_image(plate)
    assert str(plate) in str(rec[0].message) and rec[0].filename == __file__
    np.testing.assert_array_equal(img.values, _field_image(0, 0).values)
    for opener in (vz.open_multiscale, lambda p: xr.open_dataset(p, engine="voxzarr"),
                   lambda p: xr.open_datatree(p, engine="voxzarr")):
        with pytest.warns(UserWarning, match=msg):
            opener(plate)


def test_plate_well_without_field_warns(plate):
    with pytest.warns(UserWarning, match=r"opened field 0 of well .*plate\.zarr/B/1 "
                                         r"\(2 fields\); pick another with field=1"):
        img = vz.open_image(plate, well="B/1")
    np.testing.assert_array_equal(img.values, _field_image(2, 0).values)
    # a field without a well still leaves the well to choose
    with pytest.warns(UserWarning, match=r"opened well 'A/1' field 1 .*well='A/2', field=0"):
        img = vz.open_image(plate, field=1)
    np.testing.assert_array_equal(img.values, _field_image(0, 1).values)


def test_plate_explicit_choice_is_quiet(plate):
    img = _no_warning(vz.open_image, plate, well="A/2", field=1)
    np.testing.assert_array_equal(img.values, _field_image(1, 1).values)
    ds = _no_warning(xr.open_dataset, plate, engine="voxzarr", well="B/1", field=0)
    np.testing.assert_array_equal(ds["image"].values, _field_image(2, 0).values)
    # a path straight to the image needs no choice
    img = _no_warning(vz.open_image, plate / "B" / "1" / "1")
    np.testing.assert_array_equal(img.values, _field_image(2, 1).values)


def test_plate_bad_choice_names_the_options(plate):
    with pytest.raises(vz.MetadataError, match=r"no well 'C/3'; wells are \['A/1', 'A/2'"):
        vz.open_image(plate, well="C/3")
    with pytest.raises(vz.MetadataError, match="well has 2 fields, asked for field 2"):
        vz.open_image(plate, well="A/1", field=2)


def test_real_bf2raw_series_default_warns(data_dir):
    path = _bf2raw(data_dir, "fake-series-2.zarr")
    msg = (r"opened series 0 \(group '0'\) of the bioformats2raw layout .*fake-series-2\.zarr "
           r"\(2 series\); pick another with series=1")
    with pytest.warns(UserWarning, match=msg):
        img = vz.open_image(path)
    np.testing.assert_array_equal(img.values, zarr.open_array(path / "0" / "0", mode="r")[:])
    with pytest.warns(UserWarning, match=msg):
        vz.open_multiscale(path)
    with pytest.warns(UserWarning, match=msg):
        xr.open_dataset(path, engine="voxzarr")
    for series in (0, 1):
        img = _no_warning(vz.open_image, path, series=series)
        raw = zarr.open_array(path / str(series) / "0", mode="r")[:]
        np.testing.assert_array_equal(img.values, raw)


def test_real_bf2raw_plate_default_warns(data_dir):
    path = _bf2raw(data_dir, "plate-rows-2.zarr")
    with pytest.warns(UserWarning, match=r"opened well 'A/1' field 0 of plate .*"
                                         r"\(2 wells; 1 field in 'A/1'\); pick another with "
                                         r"well='B/1', field=0"):
        vz.open_image(path)
    _no_warning(vz.open_image, path, well="B/1")
    _no_warning(vz.open_image, path, series=1)  # bioformats2raw series of the plate


# --------------------------------------------------------------------------- info
def test_info_lists_wells_and_fields(plate):
    rep = _no_warning(vz.info, plate)
    assert rep["container"] == "plate" and rep["image"].endswith("A/1/0")
    images = rep["images"]
    assert [(im["well"], im["field"], im["path"]) for im in images] == [
        (w, f, f"{w}/{f}") for w in WELLS for f in (0, 1)]
    assert {im["path"]: im["shape"] for im in images if im["well"] == "A/2"} == {
        "A/2/0": [2, 6, 8], "A/2/1": [2, 8, 8]}
    assert all(im["dtype"] == "uint16" and im["axes"] == "zyx" and im["levels"] == 1
               for im in images)
    json.dumps(rep)
    text = format_info(rep)
    assert "3 wells, 6 images" in text
    row = next(line for line in text.splitlines() if "A/2/1" in line)
    assert row.split()[:3] == ["A/2", "1", "A/2/1"] and "2 x 8 x 8" in row and "uint16" in row
    marked = [line for line in text.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and "A/1/0" in marked[0]
    other = format_info(vz.info(plate, well="B/1", field=1))
    assert "B/1/1" in next(line for line in other.splitlines() if line.startswith("*"))


def test_info_lists_real_series_and_wells(data_dir, capsys):
    rep = _no_warning(vz.info, _bf2raw(data_dir, "fake-series-2.zarr"))
    assert [(im["series"], im["path"], im["shape"], im["dtype"]) for im in rep["images"]] == [
        (0, "0", [1, 1, 1, 512, 512], "uint8"), (1, "1", [1, 1, 1, 512, 512], "uint8")]
    assert rep["series"] == ["0", "1"]
    rep = _no_warning(vz.info, _bf2raw(data_dir, "plate-rows-2.zarr"))
    assert [(im["well"], im["field"], im["shape"]) for im in rep["images"]] == [
        ("A/1", 0, [1, 1, 1, 512, 512]), ("B/1", 0, [1, 1, 1, 512, 512])]
    assert main(["info", str(_bf2raw(data_dir, "plate-rows-2.zarr"))]) == 0
    out = capsys.readouterr().out
    assert "2 wells, 2 images" in out and "B/1/0" in out
    assert main(["info", "--json", str(_bf2raw(data_dir, "fake-series-2.zarr"))]) == 0
    assert len(json.loads(capsys.readouterr().out)["images"]) == 2


def test_info_plain_image_has_no_listing(tmp_path):
    path = tmp_path / "a.ome.zarr"
    _field_image(0, 0).vox.to_ome_zarr(path)
    rep = vz.info(path)
    assert rep["images"] is None
    assert "pick one" not in format_info(rep) and "open one" not in format_info(rep)


def test_info_reports_a_broken_well_and_goes_on(plate, tmp_path):
    import shutil

    copy = tmp_path / "plate.zarr"
    shutil.copytree(plate, copy)
    shutil.rmtree(copy / "A" / "2" / "1")
    rep = vz.info(copy)
    broken = next(im for im in rep["images"] if im["path"] == "A/2/1")
    assert "error" in broken and "shape" not in broken
    assert len([im for im in rep["images"] if "shape" in im]) == 5
    assert "unreadable" in format_info(rep)
