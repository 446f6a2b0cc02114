import numpy as np
import pytest
import xarray as xr

import voxzarr as vz
from voxzarr.coords import geometry, parse_dims
from voxzarr.errors import GeometryError


def test_pixel_centre_coords_and_geometry():
    img = vz.from_array(np.zeros((3, 4, 5)), "zyx", voxel_size={"z": 1.0, "y": 0.202, "x": 0.202},
                        translation={"z": 10.0})
    np.testing.assert_array_equal(img.z.values, [10.0, 11.0, 12.0])
    assert img.vox.voxel_size == {"z": 1.0, "y": 0.202, "x": 0.202}
    assert img.vox.origin == {"z": 10.0, "y": 0.0, "x": 0.0}
    assert img.vox.units["y"] == "micrometer"
    assert img.vox.extent["z"] == (9.5, 12.5)


def test_strided_slice_keeps_geometry():
    img = vz.from_array(np.zeros((8, 10, 10)), "zyx", voxel_size={"z": 1.0, "y": 0.5, "x": 0.5})
    sub = img[:, 1::2, ::2]
    assert sub.vox.voxel_size == {"z": 1.0, "y": 1.0, "x": 1.0}
    assert sub.vox.origin["y"] == 0.5
    co = img.coarsen(y=2, x=2).mean()
    assert co.vox.voxel_size["y"] == 1.0
    assert co.vox.origin["y"] == 0.25  # (k - 1) * s / 2


def test_units_normalised_and_unknown_rejected():
    img = vz.from_array(np.zeros((2, 2)), "yx", voxel_size=1, units="µm")
    assert img.vox.units == {"y": "micrometer", "x": "micrometer"}
    with pytest.raises(vz.UnitError):
        vz.from_array(np.zeros((2, 2)), "yx", voxel_size=1, units="furlong")


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_voxel_size(bad):
    with pytest.raises(GeometryError, match="voxel size"):
        vz.from_array(np.zeros((2, 2)), "yx", voxel_size={"y": bad})


def test_non_uniform_coordinate_is_an_error():
    img = xr.DataArray(np.zeros((3, 3)), dims=("y", "x"),
                       coords={"y": [0.0, 1.0, 3.0], "x": [0.0, 1.0, 2.0]})
    with pytest.raises(GeometryError, match="uniformly"):
        geometry(img)


@pytest.mark.parametrize("dims", ["xy", "zz", "q", "x", "tczyxq"])
def test_bad_dims(dims):
    with pytest.raises(GeometryError):
        parse_dims(dims)


def test_set_voxel_size_returns_new_object():
    img = vz.from_array(np.zeros((2, 3, 4)), "zyx", voxel_size=1.0)
    new = img.vox.set_voxel_size({"z": 2.0}, units="nm")
    assert new.vox.voxel_size == {"z": 2.0, "y": 1.0, "x": 1.0}
    assert new.vox.units["x"] == "nanometer"
    assert img.vox.voxel_size["z"] == 1.0


def test_length_one_axis_keeps_spacing():
    img = vz.from_array(np.zeros((5, 4, 4)), "zyx", voxel_size={"z": 3.0, "y": 1, "x": 1})
    assert img.isel(z=slice(2, 3)).vox.voxel_size["z"] == 3.0
