"""The scipy.ndimage reference that voxzarr's filters must reproduce, shared by their tests.

Random images, the whole-image scipy result of a filter or a chain of filters, the comparison
(bit-identical, with uniform's documented bound) and a hypothesis strategy of filter specs.
Used by tests/filters, tests/halo (the stored-halo path) and tests/compute (the compiled
passes); ``tests/conftest.py`` puts this folder on ``sys.path``, so it imports by name.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
from hypothesis import strategies as st

from voxzarr.filters import FILTERS

DTYPES = ("uint8", "uint16", "float32", "float64")
ZYX = ("z", "y", "x")


def make_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        arr = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    else:
        arr = (rng.standard_normal(shape) * 100).astype(dtype)
    return arr


# --------------------------------------------------------------------------- the reference
def _dog_reference(x, low, high, mode, cval, truncate=4.0):
    f = np.float64 if x.dtype == np.float64 else np.float32
    xf = x.astype(f)
    return (ndi.gaussian_filter(xf, low, mode=mode, cval=cval, truncate=truncate)
            - ndi.gaussian_filter(xf, high, mode=mode, cval=cval, truncate=truncate))


def reference(x, name, params, mode, cval=0.0):
    """The whole-image scipy.ndimage result voxzarr must reproduce."""
    p = dict(params)
    if name == "gaussian":
        return ndi.gaussian_filter(x, mode=mode, cval=cval, **p)
    if name in ("gaussian_laplace", "gaussian_gradient_magnitude"):
        return getattr(ndi, name)(x, mode=mode, cval=cval, **p)
    if name == "difference_of_gaussians":
        high = p.get("sigma_high", 1.6 * np.asarray(p["sigma_low"], dtype=float))
        return _dog_reference(x, p["sigma_low"], high, mode, cval)
    if name == "uniform":
        return ndi.uniform_filter(x, mode=mode, cval=cval, **p)
    if name in ("median", "minimum", "maximum"):
        return getattr(ndi, f"{name}_filter")(x, mode=mode, cval=cval, **p)
    if name in ("sobel", "prewitt"):
        return getattr(ndi, name)(x, mode=mode, cval=cval, **p)
    if name == "laplace":
        return ndi.laplace(x, mode=mode, cval=cval)
    if name in ("convolve", "correlate"):
        return getattr(ndi, name)(x, mode=mode, cval=cval, **p)
    raise AssertionError(name)


def chain_reference(x, steps, mode, cval=0.0):
    for name, params in steps:
        x = reference(x, name, params, mode, cval)
    return x


def assert_matches(got, want, steps):
    """Bit-identical, except uniform's running sum on floats (documented bound)."""
    assert got.dtype == want.dtype
    if any(n == "uniform" for n, _ in steps) and want.dtype.kind == "f":
        # scipy's uniform_filter1d keeps a running sum whose rounding depends on where the
        # line starts; bound: a few ulp of the data magnitude
        tol = 1e-11 if want.dtype == np.float64 else 2e-4
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)
    else:
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- strategies
@st.composite
def filter_specs(draw, ndim):
    name = draw(st.sampled_from(sorted(set(FILTERS) - {"dog"})))
    small = st.floats(0.3, 2.5)
    per_axis = st.lists(st.floats(0.0, 2.5), min_size=ndim, max_size=ndim)
    if name == "gaussian":
        sigma = draw(st.one_of(small, per_axis.map(tuple)))
        order = draw(st.one_of(st.integers(0, 2),
                               st.lists(st.integers(0, 2), min_size=ndim, max_size=ndim)
                               .map(tuple)))
        p = {"sigma": sigma, "order": order}
        if draw(st.booleans()):
            p["truncate"] = draw(st.sampled_from([2.0, 3.3]))
    elif name in ("gaussian_laplace", "gaussian_gradient_magnitude"):
        p = {"sigma": draw(small)}
    elif name == "difference_of_gaussians":
        p = {"sigma_low": draw(st.floats(0.3, 1.5))}
    elif name in ("uniform", "median", "minimum", "maximum"):
        if name != "uniform" and draw(st.booleans()):
            shape = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
            fp = draw(st.lists(st.booleans(), min_size=int(np.prod(shape)),
                               max_size=int(np.prod(shape))))
            fp = np.array(fp, dtype=bool).reshape(shape)
            fp.flat[0] = True
            p = {"footprint": fp}
            widths = shape
        else:
            widths = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
            p = {"size": tuple(widths)}
        p["origin"] = tuple(draw(st.integers(-(w // 2), (w - 1) // 2)) for w in widths)
    elif name in ("sobel", "prewitt"):
        p = {"axis": draw(st.integers(-ndim, ndim - 1))}
    elif name == "laplace":
        p = {}
    else:  # convolve, correlate
        shape = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
        w = np.random.default_rng(draw(st.integers(0, 99))).standard_normal(shape)
        p = {"weights": w.round(2),
             "origin": tuple(draw(st.integers(-(n // 2), (n - 1) // 2)) for n in shape)}
    return name, p
