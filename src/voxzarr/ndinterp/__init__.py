"""Chunked interpolation on dask arrays with :mod:`scipy.ndimage` semantics.

Drop-in for ``dask_image.ndinterp`` (same function names and parameters) without its limits:
every scipy boundary mode, spline orders 0-5 with a correct chunked prefilter, 1-D (diagonal),
2-D and homogeneous matrices, and numpy or CuPy chunks.

How it works. Each output chunk is one task. The planner maps the chunk's corners through the
transform, takes the bounding box of the input it needs plus a margin (spline support, the
prefilter depth, a smoothing radius), and the task receives exactly the input blocks that
cover that box. Where a boundary mode maps coordinates to the far side of the image (wrap) or
further than the box (reflect/mirror), the region grows to include what the mode reads, up to
the whole axis. At a true image edge the region edge *is* the image edge, so scipy applies the
mode there exactly as on the whole array.

Axis-aligned transforms (a diagonal matrix) of order 0 or 1 take a separable path: per axis, a
table of input taps and weights reproduces scipy's coordinate mapping for the mode, and the
chunk is interpolated one axis at a time (trilinear equals three 1-D linear passes). This is
several times faster than a 3-D spline kernel and exact to float rounding; on CuPy one fused
kernel does all axes in a single pass.

Like scipy, :func:`rotate` turns an N-D array plane by plane (the other axes are neither
prefiltered nor interpolated); complex input is processed as its real and imaginary parts;
an ``(ndim, k)`` matrix maps a ``k``-D output; bad arguments raise the builtin error types
scipy raises (:class:`~voxzarr.errors.InterpolationArgumentError` is a ``RuntimeError`` and a
``ValueError``).

The spline prefilter is an infinite-impulse-response filter, so chunked prefiltering is exact
only to a tolerance: the error a truncated line injects decays by ``|z|`` per voxel (``z`` the
filter pole with the largest magnitude: 0.268 for cubic, 0.430 for quintic).
:func:`prefilter_depth` gives the halo after which it is below ``1e-8`` of the data, well
under float32 resolution.

The package, bottom first: :mod:`._checks` (arguments, boundary modes), :mod:`._taps` (spline
support, prefilter depth, 1-D taps), :mod:`._matrix` (matrix forms, rotations, scipy-rounded
coordinates), :mod:`._dtypes` (working precision, casts), :mod:`._graph` (one task per output
chunk), :mod:`._cpu` and :mod:`._gpu` (the separable passes; the CUDA sources are
``cuda/*.cu``), :mod:`._blocks` (the task of one chunk), :mod:`._cval` (scipy's sums where
every tap is ``cval``), :mod:`._plan` (the chunk planner), :mod:`._points` (scattered points
for :func:`map_coordinates`), :mod:`._complex` (complex input) and :mod:`.api` (the public
functions).
"""

from __future__ import annotations

# names outside __all__ are re-exported (``as`` themselves) because callers reach them through
# the package: the matrix helpers, and the private helpers that tests and benchmarks check
from ._checks import MODES
from ._checks import _check_mode as _check_mode
from ._cpu import _pass_cpu as _pass_cpu
from ._cpu import _round_cpu as _round_cpu
from ._dtypes import _compute_dtype as _compute_dtype
from ._gpu import _gpu_separable as _gpu_separable
from ._matrix import normalize_matrix as normalize_matrix
from ._matrix import rotation_matrix as rotation_matrix
from ._plan import _axis_box as _axis_box
from ._taps import PREFILTER_TOL as PREFILTER_TOL
from ._taps import _map_coordinate as _map_coordinate
from ._taps import _spline_margin as _spline_margin
from ._taps import prefilter_depth, taps_1d
from .api import (
    affine_transform,
    map_coordinates,
    rotate,
    scale_translate,
    smoothed_affine,
    spline_filter,
    spline_filter1d,
)

__all__ = [
    "MODES",
    "affine_transform",
    "map_coordinates",
    "prefilter_depth",
    "rotate",
    "scale_translate",
    "smoothed_affine",
    "spline_filter",
    "spline_filter1d",
    "taps_1d",
]
