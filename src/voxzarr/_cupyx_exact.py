"""``cupyx.scipy.ndimage`` with scipy's spline prefilter on short axes.

cupyx's spline prefilter starts the recursion on lines of at most ``3 * order + 1`` samples
in the ``reflect``, ``grid-mirror`` and ``nearest`` modes differently from scipy (measured on
cupy 14: up to 1.5e-5 on data in [0, 1) for order 5 on 6 samples), so a GPU rotation of a
5-plane stack would not equal scipy's. This module is cupyx's ndimage with those lines
filtered by scipy on the host (they are short, so the copy is small next to the transform);
everything else is cupyx unchanged. ``voxzarr._xp.ndimage_module`` hands it out for CuPy
arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.ndimage as _scipy_ndi

#: modes whose short-line initialisation differs from scipy in cupyx
_INEXACT_MODES = ("reflect", "grid-mirror", "nearest")


def _short(n: int, order: int, mode: str) -> bool:
    return order > 1 and mode in _INEXACT_MODES and n <= 3 * order + 1


def spline_filter1d(input: Any, order: int = 3, axis: int = -1,  # noqa: A002
                    output: Any = np.float64, mode: str = "mirror") -> Any:
    """:func:`cupyx.scipy.ndimage.spline_filter1d`, scipy's result on short lines."""
    import cupy
    import cupyx.scipy.ndimage as cndi

    if input.ndim and _short(input.shape[axis], order, mode):
        host = _scipy_ndi.spline_filter1d(cupy.asnumpy(input), order, axis=axis,
                                          output=output, mode=mode)
        return cupy.asarray(host)
    return cndi.spline_filter1d(input, order, axis=axis, output=output, mode=mode)


def spline_filter(input: Any, order: int = 3, output: Any = np.float64,  # noqa: A002
                  mode: str = "mirror") -> Any:
    """:func:`cupyx.scipy.ndimage.spline_filter`, axis by axis as scipy does."""
    out = input
    for axis in range(input.ndim):
        out = spline_filter1d(out, order, axis=axis, output=output, mode=mode)
    return out


def _needs_own_prefilter(input: Any, order: int, mode: str, prefilter: bool) -> bool:
    # nearest / grid-constant are padded by 12 before filtering (scipy and cupyx alike), so
    # only the unpadded modes meet short lines
    return prefilter and any(_short(n, order, mode) for n in input.shape) \
        and mode not in ("nearest", "grid-constant")


def affine_transform(input: Any, matrix: Any, offset: Any = 0.0,  # noqa: A002
                     output_shape: Any = None, output: Any = None, order: int = 3,
                     mode: str = "constant", cval: float = 0.0,
                     prefilter: bool = True, **kwargs: Any) -> Any:
    """:func:`cupyx.scipy.ndimage.affine_transform` with an exact prefilter."""
    import cupyx.scipy.ndimage as cndi

    if _needs_own_prefilter(input, order, mode, prefilter):
        input, prefilter = spline_filter(input, order, np.float64, mode), False  # noqa: A001
    return cndi.affine_transform(input, matrix, offset, output_shape, output, order, mode,
                                 cval, prefilter, **kwargs)


def map_coordinates(input: Any, coordinates: Any, output: Any = None,  # noqa: A002
                    order: int = 3, mode: str = "constant", cval: float = 0.0,
                    prefilter: bool = True) -> Any:
    """:func:`cupyx.scipy.ndimage.map_coordinates` with an exact prefilter."""
    import cupyx.scipy.ndimage as cndi

    if _needs_own_prefilter(input, order, mode, prefilter):
        input, prefilter = spline_filter(input, order, np.float64, mode), False  # noqa: A001
    return cndi.map_coordinates(input, coordinates, output, order, mode, cval, prefilter)


def __getattr__(name: str) -> Any:
    import cupyx.scipy.ndimage as cndi

    return getattr(cndi, name)
