"""img.vox.rotate equals scipy.ndimage.rotate (plane by plane in 3-D) for any chunking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

import voxzarr as vz
from voxzarr import ndinterp
from voxzarr.errors import GeometryError

RNG = np.random.default_rng(7)
DATA = RNG.random((6, 20, 24))


@pytest.mark.parametrize("order", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("prefilter", [True, False])
@pytest.mark.parametrize("mode", ["reflect", "grid-mirror", "nearest", "constant"])
@pytest.mark.parametrize("axes", [("y", "x"), ("z", "x"), ("z", "y")])
def test_rotate_matches_scipy_plane_by_plane(order, prefilter, mode, axes):
    # anisotropic z: a rotation in the y-x plane is still plane by plane in z
    vs = {"z": 3.0, "y": 0.5, "x": 0.5} if axes == ("y", "x") else 1.0
    img = vz.from_array(DATA, dims="zyx", voxel_size=vs).chunk({"z": 2, "y": 7, "x": 9})
    out = img.vox.rotate(30, axes=axes, reshape=False, order=order, prefilter=prefilter,
                         mode=mode, anti_alias=False).values
    ref = ndi.rotate(DATA, 30, axes=tuple("zyx".index(a) for a in axes), reshape=False,
                     order=order, prefilter=prefilter, mode=mode)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-7 * np.abs(ref).max())


def test_planes_must_leave_the_other_axes_alone():
    image = np.zeros((4, 5, 6))
    m = np.eye(3)
    m[0, 0] = 0.5  # axis 0 is scaled: it cannot pass through
    with pytest.raises(GeometryError, match="planes"):
        ndinterp.affine_transform(image, m, planes=(1, 2), order=3)
