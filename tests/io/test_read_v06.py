"""Reading NGFF 0.6rc0: voxzarr's coordinates come from the datasets' coordinate system."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

import voxzarr as vz
from voxzarr.errors import MetadataError

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "ngff" / "dev-0.6rc0" / "examples"


def _store(tmp_path: Path, attrs: dict, arrays: dict[str, np.ndarray]) -> Path:
    root = tmp_path / "x.ome.zarr"
    g = zarr.open_group(root, mode="w", zarr_format=3)
    g.attrs.update(attrs)
    for name, values in arrays.items():
        g.create_array(name, shape=values.shape, dtype=values.dtype)[:] = values
    return root


def test_map_axis_permutation_is_followed(tmp_path):
    """subspacePermute: array axes (dim_0, dim_1) are physical (x, y) by mapAxis [1, 0]."""
    doc = json.loads((EXAMPLES / "subspace" / "subspacePermute.json").read_text())
    values = np.arange(15, dtype="int32").reshape(3, 5)
    root = _store(tmp_path, doc["attributes"], {"array": values})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = vz.open_image(root)
    assert img.dims == ("y", "x")
    np.testing.assert_array_equal(img.values, values.T)  # y is the array's second axis
    assert img.attrs["voxzarr_stored_axes"] == "xy"
    assert vz.validate(root).valid


def test_scale_to_a_named_system_is_composed(tmp_path):
    ms = {"coordinateSystems": [
        {"name": "physical", "axes": [{"name": "y", "type": "space", "unit": "micrometer"},
                                      {"name": "x", "type": "space", "unit": "micrometer"}]},
        {"name": "intrinsic", "axes": [{"name": "i", "type": "space"},
                                       {"name": "j", "type": "space"}]}],
          "datasets": [{"path": "0", "coordinateTransformations": [
              {"type": "scale", "scale": [1, 1], "input": {"path": "0"},
               "output": {"name": "intrinsic"}}]}],
          "coordinateTransformations": [
              {"type": "scale", "scale": [0.5, 0.25], "input": {"name": "intrinsic"},
               "output": {"name": "physical"}}]}
    root = _store(tmp_path, {"ome": {"version": "0.6rc0", "multiscales": [ms]}},
                  {"0": np.zeros((4, 6), "uint8")})
    img = vz.open_image(root)
    assert img.vox.voxel_size == {"y": 0.5, "x": 0.25}


def test_an_affine_to_the_named_system_is_refused_clearly(tmp_path):
    ms = {"coordinateSystems": [
        {"name": "physical", "axes": [{"name": "y", "type": "space"},
                                      {"name": "x", "type": "space"}]},
        {"name": "intrinsic", "axes": [{"name": "i", "type": "space"},
                                       {"name": "j", "type": "space"}]}],
          "datasets": [{"path": "0", "coordinateTransformations": [
              {"type": "scale", "scale": [1, 1], "input": {"path": "0"},
               "output": {"name": "intrinsic"}}]}],
          "coordinateTransformations": [
              {"type": "affine", "affine": [[0, 1, 0], [1, 0, 0]],
               "input": {"name": "intrinsic"}, "output": {"name": "physical"}}]}
    root = _store(tmp_path, {"ome": {"version": "0.6rc0", "multiscales": [ms]}},
                  {"0": np.zeros((4, 6), "uint8")})
    with pytest.raises(MetadataError, match=r"coordinateTransformations\[0\].type.*'affine'"):
        vz.open_image(root)
