"""voxzarr's layouts: one ``"voxzarr"`` key, versions written as ``"MAJOR.MINOR"`` strings."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import zarr

import voxzarr as vz
from voxzarr.halo import open_halo, write_halo
from voxzarr.ngff import layouts
from voxzarr.series.transpose import series_info


def test_versions_read_both_spellings():
    assert layouts.parse_version("0.1") == (0, 1)
    assert layouts.parse_version("1.0") == (1, 0)
    assert layouts.parse_version(1) == (1, 0)  # halo arrays written before version strings
    assert layouts.parse_version("1") == (1, 0)
    for bad in (True, None, "x", "1.0.0", -1, 1.5):
        assert layouts.parse_version(bad) is None
    assert layouts.check_version(1, "1.0", layout="halo") == "1.0"
    assert layouts.check_version("1.3", "1.0", layout="halo") == "1.3"
    with pytest.raises(vz.MetadataError, match="version") as info:
        layouts.check_version("2.0", "1.0", layout="halo")
    assert info.value.field == "voxzarr.version"


def test_new_writes_are_strings_and_old_halos_still_open(tmp_path):
    store = zarr.storage.MemoryStore()
    arr = np.arange(60, dtype="uint16").reshape(6, 10)
    vz.from_array(arr, "yx").vox.to_ome_zarr(store, chunks=(3, 5), progress=False)
    write_halo(None, store, depth=2, progress=False)
    harr = zarr.open_array(store, path="halo/0", mode="r+")
    assert harr.attrs[layouts.VOXZARR_KEY]["version"] == layouts.HALO_VERSION == "1.0"
    group = zarr.open_group(store, path="halo", mode="r")
    assert group.attrs["voxzarr"]["version"] == "1.0"
    # a halo written by an earlier voxzarr records the integer 1
    harr.attrs["voxzarr"] = {**harr.attrs["voxzarr"], "version": 1}
    np.testing.assert_array_equal(open_halo(store).core.values, arr)


def test_series_store_records_a_string_version(tmp_path):
    img = vz.from_array(np.zeros((4, 6, 8), "uint8"), "tyx", voxel_size=1)
    out = img.vox.to_series(tmp_path / "s.series.zarr", progress=False)
    assert series_info(out)["version"] == layouts.SERIES_VERSION == "0.1"


def test_the_key_is_spelled_once():
    """Only voxzarr.ngff.layouts spells the attribute key as a string."""
    src = Path(vz.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        if path == src / "ngff" / "layouts.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # attribute access: attrs["voxzarr"], attrs.get("voxzarr"), {"voxzarr": ...}
            keys = []
            if isinstance(node, ast.Subscript):
                keys = [node.slice]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("get", "pop"):
                keys = node.args[:1]
            elif isinstance(node, ast.Dict):
                keys = [k for k in node.keys if k is not None]
            found += [f"{path.relative_to(src)}:{node.lineno}" for k in keys
                      if isinstance(k, ast.Constant) and k.value == "voxzarr"]
    assert not found, f"use voxzarr.ngff.layouts.VOXZARR_KEY: {found}"
