"""Results keep the input's name (or none), never a dask token."""

import numpy as np
import pytest

import voxzarr as vz


@pytest.mark.parametrize("name", [None, "cells"])
@pytest.mark.parametrize("op", ["to_isotropic", "rotate", "resample", "affine", "filter"])
def test_result_keeps_input_name(name, op):
    img = vz.from_array(np.zeros((4, 8, 8), "float32"), dims="zyx",
                        voxel_size={"z": 2.0, "y": 1.0, "x": 1.0}, name=name)
    calls = {
        "to_isotropic": lambda: img.vox.to_isotropic(),
        "rotate": lambda: img.vox.rotate(30),
        "resample": lambda: img.vox.resample(voxel_size={"z": 1.0}),
        "affine": lambda: img.vox.affine(np.eye(3)),
        "filter": lambda: img.vox.filter("gaussian", sigma=1.0),
    }
    assert calls[op]().name == name


def test_pyramid_levels_keep_name():
    img = vz.from_array(np.zeros((4, 64, 64), "uint16"), dims="zyx", voxel_size=1.0, name=None)
    tree = img.vox.pyramid(levels=2)
    for child in tree.children.values():
        for var in child.to_dataset().data_vars.values():
            assert not str(var.name).startswith(("vz-", "voxzarr-"))
