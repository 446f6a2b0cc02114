"""scipy.ndimage's own interpolation tests, run against voxzarr.ndinterp on dask chunks.

The tests ship inside the installed scipy (``scipy/ndimage/tests``); they are imported here at
test time, never copied. An adapter stands in for ``scipy.ndimage`` inside those modules: it
splits every numpy input into dask chunks, calls the voxzarr function and computes the
result. Functions voxzarr does not offer (``shift``, ``zoom``, ``geometric_transform``) stay
scipy's, since the tests also use them to build expected values; their own test classes are
listed in ``NOT_OFFERED`` (not collected, so not skipped). Each test runs at several
chunkings, one-voxel chunks included.

scipy's ``xp`` fixture (array-API backends) is replaced by plain numpy: voxzarr takes numpy
or dask input.
"""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as scipy_ndimage

from voxzarr import ndinterp


def _import_scipy_tests(name: str) -> Any:
    with warnings.catch_warnings():  # scipy's own pytest marks are not registered here
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return pytest.importorskip(f"scipy.ndimage.tests.{name}",
                                   reason="scipy installed without its test suite")


_interp = _import_scipy_tests("test_interpolation")
_splines = _import_scipy_tests("test_splines")

#: chunkings every test runs at: one chunk, one-voxel chunks and a ragged 1, 2, 3, 1, 2, 3...
#: split (``"two"``, two-voxel chunks, is available for debugging)
CHUNKINGS = ("whole", "one", "ragged")
#: arrays larger than this are split in 1024-voxel chunks (scipy's large-data test)
_LARGE = 2**22
#: at most this many blocks per array (input) and per coordinates array: beyond it the
#: chunks grow along the last axes chunked, which keeps the module's runtime moderate
_MAX_BLOCKS = {"input": 256, "coordinates": 64}


def _split(n: int, chunking: str, scale: int) -> tuple[int, ...]:
    """Chunk sizes along one axis: ``scale`` times the chunking's pattern."""
    pattern = {"one": (1,), "two": (2,), "ragged": (1, 2, 3)}[chunking]
    sizes, k = [], 0
    while sum(sizes) < n:
        sizes.append(min(pattern[k % len(pattern)] * scale, n - sum(sizes)))
        k += 1
    return tuple(sizes)


def _chunks(shape: tuple[int, ...], chunking: str, max_blocks: int) -> Any:
    """Dask chunks for ``shape``: the chunking's pattern, scaled up along an axis only where
    the array would otherwise hold more than ``max_blocks`` blocks."""
    if chunking == "whole" or not shape:
        return -1
    spec, blocks = [], 1
    for n in shape:
        scale = 1
        while blocks * len(_split(n, chunking, scale)) > max_blocks and scale < n:
            scale *= 2
        sizes = _split(n, chunking, scale)
        blocks *= len(sizes)
        spec.append(sizes)
    return tuple(spec)


class _VoxzarrNdimage:
    """``scipy.ndimage`` as scipy's tests call it, computed by :mod:`voxzarr.ndinterp`.

    Signatures are scipy's (positional order, defaults: ``order=3``). ``output`` is passed
    through as it is: a preallocated array is rejected by voxzarr (see the xfail list).
    """

    def __init__(self, chunking: str):
        self.chunking = chunking

    def __getattr__(self, name: str) -> Any:
        return getattr(scipy_ndimage, name)  # shift, zoom, geometric_transform, ...

    def _dask(self, x: Any, lead: int = 0) -> da.Array:
        """``x`` as a dask array; ``lead`` leading axes stay whole (coordinates' axis 0)."""
        a = np.asarray(x)
        if a.size > _LARGE:  # touch only the blocks read (np.empty pages stay unmapped)
            return da.from_array(a, chunks=1024, name=False)
        spec = _chunks(a.shape[lead:], self.chunking,
                       _MAX_BLOCKS["coordinates" if lead else "input"])
        if lead:
            spec = (-1,) * lead + (spec if isinstance(spec, tuple)
                                   else (spec,) * (a.ndim - lead))
        return da.from_array(a, chunks=spec)

    def affine_transform(self, input: Any, matrix: Any, offset: Any = 0.0,  # noqa: A002
                         output_shape: Any = None, output: Any = None, order: int = 3,
                         mode: str = "constant", cval: float = 0.0,
                         prefilter: bool = True) -> np.ndarray:
        return ndinterp.affine_transform(
            self._dask(input), matrix, offset, output_shape, order, mode=mode, cval=cval,
            prefilter=prefilter, output=output).compute()

    def rotate(self, input: Any, angle: float, axes: Any = (1, 0),  # noqa: A002
               reshape: bool = True, output: Any = None, order: int = 3,
               mode: str = "constant", cval: float = 0.0,
               prefilter: bool = True) -> np.ndarray:
        return ndinterp.rotate(self._dask(input), angle, axes, reshape, order=order, mode=mode,
                               cval=cval, prefilter=prefilter, output=output).compute()

    def map_coordinates(self, input: Any, coordinates: Any, output: Any = None,  # noqa: A002
                        order: int = 3, mode: str = "constant", cval: float = 0.0,
                        prefilter: bool = True) -> np.ndarray:
        coords = np.asarray(coordinates)
        coords = self._dask(coords, lead=1) if coords.ndim >= 2 else coords
        return ndinterp.map_coordinates(self._dask(input), coords, order, mode, cval,
                                        prefilter, output=output).compute()

    def spline_filter(self, input: Any, order: int = 3, output: Any = np.float64,  # noqa: A002
                      mode: str = "mirror") -> np.ndarray:
        return ndinterp.spline_filter(self._dask(input), order, output, mode).compute()

    def spline_filter1d(self, input: Any, order: int = 3, axis: int = -1,  # noqa: A002
                        output: Any = np.float64, mode: str = "mirror") -> np.ndarray:
        return ndinterp.spline_filter1d(self._dask(input), order, axis, output, mode).compute()


@pytest.fixture
def xp() -> Any:
    """scipy's array-API backend fixture, pinned to numpy."""
    return np


@pytest.fixture(autouse=True)
def voxzarr_ndimage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Route the scipy test modules' ``ndimage`` through voxzarr at one chunking."""
    chunking = getattr(request, "param", "whole")
    adapter = _VoxzarrNdimage(chunking)
    monkeypatch.setattr(_interp, "ndimage", adapter)
    monkeypatch.setattr(_splines, "ndimage", adapter)
    return chunking


#: tests that run at one chunking only, with why
_ONE_CHUNKING = {
    "test_map_coordinates_large_data": "a 30000^2 array: always 1024-voxel chunks",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "voxzarr_ndimage" not in metafunc.fixturenames:
        return
    one = metafunc.function.__name__ in _ONE_CHUNKING
    metafunc.parametrize("voxzarr_ndimage", ("whole",) if one else CHUNKINGS, indirect=True)


def _xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


# Expected differences, one line each. They are scipy features without a dask meaning.
_IN_PLACE = _xfail("output= a preallocated array, filled in place: dask results are new "
                   "arrays, voxzarr accepts a dtype only (GeometryError)")
XFAIL = {
    "test_affine_transform_1d_endianness_with_output_parameter": _IN_PLACE,
    "test_affine_transform_multi_d_endianness_with_output_parameter": _IN_PLACE,
    "test_affine_transform_output_shape": _IN_PLACE,
    "test_map_coordinates_endianness_with_output_parameter": _IN_PLACE,
}


def _marked(cls: type) -> type:
    """Attach the :data:`XFAIL` marks to the test methods of ``cls`` (a subclass)."""
    for name in dir(cls):
        if name in XFAIL:
            setattr(cls, name, XFAIL[name](getattr(cls, name)))
    return cls


# --------------------------------------------------------------------------- run
@_marked
class TestAffineTransform(_interp.TestAffineTransform):
    pass


@_marked
class TestMapCoordinates(_interp.TestMapCoordinates):
    pass


class TestRotate(_interp.TestRotate):
    pass


class TestSpline(_interp.TestSpline):
    pass


class TestBoundaries(_interp.TestBoundaries):
    # not collected: they call geometric_transform (see NOT_OFFERED)
    test_boundaries = None
    test_boundaries2 = None


class TestZoomAffine:
    """The one test of scipy's ``TestZoom`` that calls ``affine_transform`` (a 1-D matrix)."""

    test_zoom_affine01 = _interp.TestZoom.test_zoom_affine01


test_spline_filter_vs_matrix_solution = _splines.test_spline_filter_vs_matrix_solution


# --------------------------------------------------------------------------- not offered
#: scipy tests not collected here, with why: functions voxzarr.ndinterp does not offer (they
#: are not skipped either, so a test run's skips are only the GPU ones)
NOT_OFFERED = {
    "TestGeometricTransform": "geometric_transform: a Python callback per voxel",
    "TestGeometricTransformExtra": "geometric_transform: a Python callback per voxel",
    "TestShift": "shift: use affine_transform with an identity matrix",
    "TestZoom": "zoom: voxzarr.resample covers resizing (test_zoom_affine01 runs above)",
    "TestBoundaries.test_boundaries": "calls geometric_transform",
    "TestBoundaries.test_boundaries2": "calls geometric_transform",
}


def test_not_offered_list_names_real_scipy_tests():
    """The list above stays honest: each entry is a test scipy has."""
    for entry in NOT_OFFERED:
        obj: Any = _interp
        for part in entry.split("."):
            obj = getattr(obj, part)
        assert callable(obj) or isinstance(obj, type), entry
