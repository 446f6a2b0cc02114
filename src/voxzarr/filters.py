"""Seam-free chunked filters: a registry of filters with their exact radius, CPU and GPU.

Every registered filter runs through ``scipy.ndimage`` (CPU) or ``cupyx.scipy.ndimage`` (GPU)
on one block at a time. A block is its core chunk plus ``radius`` real neighbour voxels per
side (cropped at the image edge, so the filter's own boundary mode applies at the true edge;
wrapped to the opposite face for ``mode="wrap"``); the core of the filtered block is the
result. With the exact radius this equals filtering the whole image, bit for bit.

On the CPU, separable filters (Gaussian family, uniform) drop the rows of an axis outside
the core right after filtering along it, so later passes do not compute halo voxels that are
then thrown away; the operations per kept voxel are scipy's own, so results do not change.
Gaussian passes run compiled (:mod:`voxzarr._kernels`, numba) where covered: only the kept
rows are computed, with scipy's arithmetic, bit for bit. On the GPU the Gaussian passes run
:mod:`voxzarr._gpu_gauss`: cupyx's arithmetic per voxel, bit for bit, without its generic
kernel's per-tap index arithmetic, and again only the kept rows.

Blocks come from the stored halo (:mod:`voxzarr.halo`, one read per chunk) when the image was
opened from a store that has a fresh, deep enough halo, else from neighbouring chunks gathered
at run time. Filters act on the spatial axes (``z``, ``y``, ``x``); each ``t`` / ``c`` plane is
filtered on its own.

Radius of each filter (per spatial axis):

========================================  =====================================================
gaussian, gaussian_laplace,               ``int(truncate * sigma + 0.5)`` (scipy's rule), or
gaussian_gradient_magnitude               ``radius=`` when given; 0 on axes with sigma 0
difference_of_gaussians (``dog``)         radius of the larger sigma
uniform, median, minimum, maximum,        ``max(w // 2 + o, w - 1 - w // 2 - o)`` for window
convolve, correlate                       length ``w`` and origin ``o``
sobel, prewitt, laplace                   1
chains                                    sum of the radii of their steps
========================================  =====================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import scipy.ndimage as sndi
import xarray as xr

from . import _gpu_gauss, _kernels, _xp
from .coords import SPATIAL, geometry
from .errors import HaloError, InvalidArgumentError, StaleHaloError, VoxzarrError

__all__ = [
    "FILTERS",
    "MODES",
    "FilterChain",
    "FilterSpec",
    "FilterStep",
    "HaloDepthRule",
    "apply_filter",
    "filter_radius",
    "halo_depth_rule",
    "prepare_filter",
    "register_filter",
]

#: boundary modes every registered filter supports (scipy.ndimage names)
MODES = ("reflect", "nearest", "mirror", "constant", "wrap")

CallFn = Callable[[Any, Any, Any, str, float], Any]  # (ndimage module, xp, block, mode, cval)
CropFn = Callable[[np.ndarray, str, float, tuple[slice, ...]], np.ndarray]  # (x, mode, cval, keep)


@dataclass(frozen=True)
class FilterStep:
    """One filter with validated parameters for a fixed number of spatial axes.

    ``crop`` (optional, CPU) computes only the part ``keep`` of the output (a slice per
    axis) with the very same operations as ``call``: separable filters crop each axis right
    after filtering along it, so later passes skip the halo rows nobody needs.
    ``gpu_crop`` (optional) does the same for CuPy arrays with cupyx's arithmetic; it may
    return ``None`` for inputs it does not cover, and ``call`` then runs.
    """

    name: str
    params: Mapping[str, Any]
    radius: tuple[int, ...]
    call: CallFn = field(repr=False, compare=False)
    crop: CropFn | None = field(default=None, repr=False, compare=False)
    gpu_crop: CropFn | None = field(default=None, repr=False, compare=False)

    def run_kept(self, ndi: Any, xp: Any, x: Any, mode: str, cval: float,
                 keep: tuple[slice, ...]) -> Any:
        """The output restricted to ``keep``, cropping early where that is exact."""
        if ndi is sndi:
            if self.crop is not None:
                return self.crop(x, mode, cval, keep)
        elif self.gpu_crop is not None:
            out = self.gpu_crop(x, mode, cval, keep)
            if out is not None:
                return out
        return self.call(ndi, xp, x, mode, cval)[keep]


@dataclass(frozen=True)
class FilterSpec:
    """A registered filter: validates parameters and returns its radius and kernel call.

    ``prepare(params, dims)`` receives the user's parameters (a fresh dict it may consume)
    and the spatial dim names; it returns ``(radius per axis, call)`` or
    ``(radius, call, crop)`` or ``(radius, call, crop, gpu_crop)`` (see
    :class:`FilterStep`). ``physical`` names the
    parameters converted from physical units when ``units="physical"``.
    """

    name: str
    prepare: Callable[[dict[str, Any], tuple[str, ...]], tuple[Any, ...]]
    physical: tuple[str, ...] = ()
    summary: str = ""


FILTERS: dict[str, FilterSpec] = {}


def register_filter(name: str, prepare: Callable[..., Any], *, physical: Sequence[str] = (),
                    summary: str = "") -> FilterSpec:
    """Add a filter to the registry (``apply_filter`` and ``to_halo`` find it by name)."""
    spec = FilterSpec(name, prepare, tuple(physical), summary)
    FILTERS[name] = spec
    return spec


# --------------------------------------------------------------------------- parameter checks
def _bad(msg: str, fld: str) -> InvalidArgumentError:
    return InvalidArgumentError(msg, field=fld)


def _per_axis(value: Any, dims: tuple[str, ...], fld: str, *, integer: bool = False,
              minimum: float | None = None) -> tuple[Any, ...]:
    """One value per spatial axis from a scalar, a sequence or a ``{dim: value}`` mapping."""
    if isinstance(value, Mapping):
        unknown = set(value) - set(dims)
        if unknown:
            raise _bad(f"{sorted(unknown)} are not spatial dims {dims}", fld)
        raw = [value.get(d, 0) for d in dims]
    elif np.ndim(value) == 0:
        raw = [value] * len(dims)
    else:
        raw = list(np.asarray(value).ravel())
        if len(raw) != len(dims):
            raise _bad(f"needs 1 or {len(dims)} values (one per axis {dims}), got {value!r}",
                       fld)
    out = []
    for v in raw:
        try:
            num = float(v)
        except (TypeError, ValueError):
            raise _bad(f"must be a number, got {v!r}", fld) from None
        if not np.isfinite(num):
            raise _bad(f"must be finite, got {v!r}", fld)
        if integer and num != int(num):
            raise _bad(f"must be an integer, got {v!r}", fld)
        if minimum is not None and num < minimum:
            raise _bad(f"must be >= {minimum:g}, got {v!r}", fld)
        out.append(int(num) if integer else num)
    return tuple(out)


def _positive(value: Any, fld: str) -> float:
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise _bad(f"must be a number, got {value!r}", fld) from None
    if not np.isfinite(num) or num <= 0:
        raise _bad(f"must be > 0, got {value!r}", fld)
    return num


def _no_extra(params: dict[str, Any], name: str) -> None:
    if params:
        raise _bad(f"unknown parameter(s) {sorted(params)} for filter {name!r}",
                   ",".join(sorted(params)))


def _window_radius(width: int, origin: int) -> int:
    """Halo a window of ``width`` with ``origin`` needs: its larger one-sided reach."""
    left = width // 2 + origin
    return max(left, width - 1 - left)


def _origins(value: Any, widths: Sequence[int], dims: tuple[str, ...]) -> tuple[int, ...]:
    origins = _per_axis(value, dims, "origin", integer=True)
    for o, w, d in zip(origins, widths, dims, strict=True):
        if not -(w // 2) <= o <= (w - 1) // 2:
            raise _bad(f"origin {o} on axis {d!r} is outside [{-(w // 2)}, {(w - 1) // 2}] "
                       f"for a window of {w}", "origin")
    return origins


def _gauss_radius(sigma: float, truncate: float, radius: int | None) -> int:
    if sigma <= 1e-15:  # scipy skips such axes entirely
        return 0
    return int(radius) if radius is not None else int(truncate * sigma + 0.5)


def _gauss_common(p: dict[str, Any], dims: tuple[str, ...], key: str = "sigma"
                  ) -> tuple[tuple[float, ...], float, tuple[int, ...] | None]:
    if key not in p:
        raise _bad(f"needs {key}=", key)
    sigma = _per_axis(p.pop(key), dims, key, minimum=0.0)
    truncate = _positive(p.pop("truncate", 4.0), "truncate")
    radius = p.pop("radius", None)
    radius_t = None if radius is None else _per_axis(radius, dims, "radius", integer=True,
                                                      minimum=0)
    return sigma, truncate, radius_t


def _gauss_kwargs(truncate: float, radius: tuple[int, ...] | None) -> dict[str, Any]:
    kw: dict[str, Any] = {"truncate": truncate}
    if radius is not None:
        kw["radius"] = radius
    return kw


# --------------------------------------------------------------------------- early crops (CPU)
# Each helper repeats scipy.ndimage's own sequence of 1-D passes and in-place updates
# (scipy/ndimage/_filters.py: gaussian_filter, generic_laplace, generic_gradient_magnitude,
# uniform_filter), so results are bit-identical; it only drops, after the pass along an axis,
# the rows of that axis outside ``keep``, which no later pass along another axis reads.
def _axis_crop(x: np.ndarray, axis: int, keep: slice) -> np.ndarray:
    return x[(slice(None),) * axis + (keep,)]


def _gauss_kept(x: np.ndarray, sigma: Sequence[float], order: Sequence[int], mode: str,
                cval: float, truncate: float, radius: Sequence[int] | None,
                keep: tuple[slice, ...]) -> np.ndarray:
    cur, passed = x, [False] * x.ndim
    for axis in range(x.ndim):
        if sigma[axis] <= 1e-15:  # scipy skips the axis
            continue
        # compiled where covered (computes only the kept rows), else scipy then cropped
        cur = _kernels.gaussian1d_kept(cur, sigma[axis], axis, order[axis], mode, cval,
                                       truncate, None if radius is None else radius[axis],
                                       keep[axis])
        passed[axis] = True
    if not any(passed):
        return np.array(x[keep])  # scipy copies the input
    return cur[tuple(slice(None) if p else k for p, k in zip(passed, keep, strict=True))]


def _derivative_sum_kept(x: np.ndarray, sigma: Sequence[float], deriv: int, mode: str,
                         cval: float, truncate: float, radius: Sequence[int] | None,
                         keep: tuple[slice, ...]) -> np.ndarray:
    """generic_laplace (deriv 2) / generic_gradient_magnitude (deriv 1) of Gaussians."""
    out = None
    for axis in range(x.ndim):
        order = [0] * x.ndim
        order[axis] = deriv
        term = np.array(_gauss_kept(x, sigma, order, mode, cval, truncate, radius, keep))
        if deriv == 1:
            np.multiply(term, term, term)
        if out is None:
            out = term
        else:
            out += term
    assert out is not None
    if deriv == 1:
        np.sqrt(out, out, casting="unsafe")
    return out


# --------------------------------------------------------------------------- the filters
def _gaussian(p: dict[str, Any], dims: tuple[str, ...]):
    sigma, truncate, radius = _gauss_common(p, dims)
    order = _per_axis(p.pop("order", 0), dims, "order", integer=True, minimum=0)
    if any(o > 2 for o in order):
        raise _bad(f"order must be 0, 1 or 2 per axis, got {order}", "order")
    _no_extra(p, "gaussian")
    r = tuple(_gauss_radius(s, truncate, None if radius is None else radius[i])
              for i, s in enumerate(sigma))
    kw = _gauss_kwargs(truncate, radius)

    def call(ndi, xp, x, mode, cval):
        return ndi.gaussian_filter(x, sigma, order=order, mode=mode, cval=cval, **kw)

    def crop(x, mode, cval, keep):
        return _gauss_kept(x, sigma, order, mode, cval, truncate, radius, keep)

    def gpu_crop(x, mode, cval, keep):
        return _gpu_gauss.gaussian_kept(x, sigma, order, mode, cval, truncate, radius, keep)

    return r, call, crop, gpu_crop


def _gauss_derived(fn_name: str):
    def prepare(p: dict[str, Any], dims: tuple[str, ...]):
        sigma, truncate, radius = _gauss_common(p, dims)
        _no_extra(p, fn_name)
        r = tuple(_gauss_radius(s, truncate, None if radius is None else radius[i])
                  for i, s in enumerate(sigma))
        kw = _gauss_kwargs(truncate, radius)

        def call(ndi, xp, x, mode, cval):
            return getattr(ndi, fn_name)(x, sigma, mode=mode, cval=cval, **kw)

        deriv = 2 if fn_name == "gaussian_laplace" else 1

        def crop(x, mode, cval, keep):
            return _derivative_sum_kept(x, sigma, deriv, mode, cval, truncate, radius, keep)

        return r, call, crop

    return prepare


def _dog(p: dict[str, Any], dims: tuple[str, ...]):
    low, truncate, radius = _gauss_common(p, dims, "sigma_low")
    if radius is not None:
        raise _bad("radius= is not supported for difference_of_gaussians", "radius")
    high_raw = p.pop("sigma_high", None)
    high = tuple(1.6 * s for s in low) if high_raw is None else _per_axis(
        high_raw, dims, "sigma_high", minimum=0.0)
    if any(h < lo for h, lo in zip(high, low, strict=True)):
        raise _bad(f"sigma_high {high} must be >= sigma_low {low} on every axis",
                   "sigma_high")
    _no_extra(p, "difference_of_gaussians")
    r = tuple(max(_gauss_radius(a, truncate, None), _gauss_radius(b, truncate, None))
              for a, b in zip(low, high, strict=True))

    def call(ndi, xp, x, mode, cval):
        ftype = np.float64 if x.dtype == np.float64 else np.float32
        xf = x.astype(ftype, copy=False)
        lo = ndi.gaussian_filter(xf, low, mode=mode, cval=cval, truncate=truncate)
        hi = ndi.gaussian_filter(xf, high, mode=mode, cval=cval, truncate=truncate)
        return lo - hi

    def crop(x, mode, cval, keep):
        xf = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
        zero = (0,) * x.ndim
        return (_gauss_kept(xf, low, zero, mode, cval, truncate, None, keep)
                - _gauss_kept(xf, high, zero, mode, cval, truncate, None, keep))

    return r, call, crop


def _uniform(p: dict[str, Any], dims: tuple[str, ...]):
    size = _per_axis(p.pop("size", 3), dims, "size", integer=True, minimum=1)
    origin = _origins(p.pop("origin", 0), size, dims)
    _no_extra(p, "uniform")
    r = tuple(_window_radius(w, o) for w, o in zip(size, origin, strict=True))

    def call(ndi, xp, x, mode, cval):
        return ndi.uniform_filter(x, size, mode=mode, cval=cval, origin=origin)

    def crop(x, mode, cval, keep):
        cur, passed = x, [False] * x.ndim
        for axis in range(x.ndim):
            if size[axis] > 1:  # scipy skips size-1 axes
                cur = sndi.uniform_filter1d(cur, size[axis], axis, mode=mode, cval=cval,
                                            origin=origin[axis])
                cur = _axis_crop(cur, axis, keep[axis])
                passed[axis] = True
        if not any(passed):
            return np.array(x[keep])
        return cur[tuple(slice(None) if p else k for p, k in zip(passed, keep, strict=True))]

    return r, call, crop


def _rank(fn_name: str):
    def prepare(p: dict[str, Any], dims: tuple[str, ...]):
        size, footprint = p.pop("size", None), p.pop("footprint", None)
        if (size is None) == (footprint is None):
            raise _bad("give exactly one of size= or footprint=", "size")
        if footprint is not None:
            fp = np.asarray(footprint, dtype=bool)
            if fp.ndim != len(dims) or fp.size == 0 or not fp.any():
                raise _bad(f"footprint must be a non-empty {len(dims)}-d boolean array with "
                           f"a True voxel, got shape {fp.shape}", "footprint")
            widths = fp.shape
        else:
            widths = _per_axis(size, dims, "size", integer=True, minimum=1)
        origin = _origins(p.pop("origin", 0), widths, dims)
        _no_extra(p, fn_name)
        r = tuple(_window_radius(w, o) for w, o in zip(widths, origin, strict=True))

        def call(ndi, xp, x, mode, cval):
            kw = ({"footprint": xp.asarray(fp)} if footprint is not None
                  else {"size": widths})
            return getattr(ndi, fn_name)(x, mode=mode, cval=cval, origin=origin, **kw)

        return r, call

    return prepare


def _edge(fn_name: str):
    def prepare(p: dict[str, Any], dims: tuple[str, ...]):
        axis = p.pop("axis", -1)
        if isinstance(axis, str):
            if axis not in dims:
                raise _bad(f"axis {axis!r} is not a spatial dim of {dims}", "axis")
            axis = dims.index(axis)
        elif not isinstance(axis, int | np.integer) or not -len(dims) <= axis < len(dims):
            raise _bad(f"axis must be a spatial dim name or an index in "
                       f"[{-len(dims)}, {len(dims)}), got {axis!r}", "axis")
        axis = int(axis) % len(dims)
        _no_extra(p, fn_name)

        def call(ndi, xp, x, mode, cval):
            return getattr(ndi, fn_name)(x, axis=axis, mode=mode, cval=cval)

        return (1,) * len(dims), call

    return prepare


def _laplace(p: dict[str, Any], dims: tuple[str, ...]):
    _no_extra(p, "laplace")

    def call(ndi, xp, x, mode, cval):
        return ndi.laplace(x, mode=mode, cval=cval)

    return (1,) * len(dims), call


def _weights(fn_name: str):
    def prepare(p: dict[str, Any], dims: tuple[str, ...]):
        if "weights" not in p:
            raise _bad("needs weights= (an array with one axis per spatial dim)", "weights")
        w = np.asarray(p.pop("weights"))
        if w.ndim != len(dims) or w.size == 0 or not np.issubdtype(w.dtype, np.number):
            raise _bad(f"weights must be a non-empty numeric {len(dims)}-d array, got shape "
                       f"{w.shape} dtype {w.dtype}", "weights")
        origin = _origins(p.pop("origin", 0), w.shape, dims)
        _no_extra(p, fn_name)
        # convolve flips the kernel, which mirrors the window: the larger reach is the same
        r = tuple(_window_radius(n, o) for n, o in zip(w.shape, origin, strict=True))

        def call(ndi, xp, x, mode, cval):
            return getattr(ndi, fn_name)(x, xp.asarray(w), mode=mode, cval=cval, origin=origin)

        return r, call

    return prepare


_SIGMA = ("sigma",)
register_filter("gaussian", _gaussian, physical=_SIGMA,
                summary="Gaussian smoothing or derivative (order 0, 1, 2 per axis)")
register_filter("gaussian_laplace", _gauss_derived("gaussian_laplace"), physical=_SIGMA,
                summary="Laplacian of Gaussian")
register_filter("gaussian_gradient_magnitude", _gauss_derived("gaussian_gradient_magnitude"),
                physical=_SIGMA, summary="gradient magnitude of Gaussian derivatives")
register_filter("difference_of_gaussians", _dog, physical=("sigma_low", "sigma_high"),
                summary="G(sigma_low) - G(sigma_high), float32 (float64 for float64 input)")
FILTERS["dog"] = FILTERS["difference_of_gaussians"]
register_filter("uniform", _uniform, summary="box mean of size per axis")
register_filter("median", _rank("median_filter"), summary="median over size or footprint")
register_filter("minimum", _rank("minimum_filter"), summary="minimum over size or footprint")
register_filter("maximum", _rank("maximum_filter"), summary="maximum over size or footprint")
register_filter("sobel", _edge("sobel"), summary="Sobel derivative along axis")
register_filter("prewitt", _edge("prewitt"), summary="Prewitt derivative along axis")
register_filter("laplace", _laplace, summary="discrete Laplacian (second differences)")
register_filter("convolve", _weights("convolve"), summary="n-d convolution with weights")
register_filter("correlate", _weights("correlate"), summary="n-d correlation with weights")


# --------------------------------------------------------------------------- chains
@dataclass(frozen=True)
class FilterChain:
    """Filters applied one after another; the chain's radius is the sum of theirs."""

    steps: tuple[FilterStep, ...]
    dims: tuple[str, ...]

    @property
    def radius(self) -> tuple[int, ...]:
        return tuple(int(sum(r)) for r in zip(*(s.radius for s in self.steps), strict=True))

    def run(self, x: Any, mode: str, cval: float, ndi: Any = sndi, xp: Any = np) -> Any:
        """Filter one array whose axes are exactly the spatial dims."""
        for step in self.steps:
            x = step.call(ndi, xp, x, mode, cval)
        return x

    def run_core(self, x: Any, core: tuple[slice, ...], mode: str, cval: float,
                 ndi: Any = sndi, xp: Any = np) -> Any:
        """Filter a block and return only its ``core``.

        After each step only the core plus the radius of the steps still to come is kept
        (exact: a step's wrong values lie within its radius of the cut).
        """
        offset = [0] * x.ndim
        remaining = list(self.radius)
        for step in self.steps:
            remaining = [a - b for a, b in zip(remaining, step.radius, strict=True)]
            keep = tuple(slice(max(0, c.start - r - o), min(n, c.stop + r - o))
                         for c, r, o, n in zip(core, remaining, offset, x.shape, strict=True))
            x = step.run_kept(ndi, xp, x, mode, cval, keep)
            offset = [o + k.start for o, k in zip(offset, keep, strict=True)]
        return x[tuple(slice(c.start - o, c.stop - o)
                       for c, o in zip(core, offset, strict=True))]

    def out_dtype(self, dtype: Any) -> np.dtype:
        """The result dtype for input ``dtype`` (found by running on a tiny array)."""
        probe = np.zeros((3,) * len(self.dims), dtype=dtype)
        return np.asarray(self.run(probe, "reflect", 0.0)).dtype


def _steps_of(name: Any, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(name, str):
        return [(name, dict(params))]
    if isinstance(name, Sequence) and name:
        if params:
            raise _bad(f"parameters {sorted(params)} given with a chain; put them in each "
                       "step: [('gaussian', {'sigma': 2}), ('median', {'size': 3})]", "name")
        steps = []
        for i, item in enumerate(name):
            if isinstance(item, str):
                steps.append((item, {}))
            elif (isinstance(item, Sequence) and len(item) == 2 and isinstance(item[0], str)
                  and isinstance(item[1], Mapping)):
                steps.append((item[0], dict(item[1])))
            else:
                raise _bad(f"chain step {i} must be a name or (name, params), got {item!r}",
                           "name")
        return steps
    raise _bad(f"filter must be a name or a non-empty list of (name, params), got {name!r}",
               "name")


def prepare_filter(name: Any, dims: Sequence[str], *, units: str = "voxel",
                   voxel_size: Mapping[str, float] | None = None, **params: Any
                   ) -> FilterChain:
    """Validate a filter (or a chain) for images with spatial ``dims``.

    Parameters
    ----------
    name
        A registered filter name, or a list of ``(name, params)`` steps (a chain).
    dims
        The spatial dims the filter acts on, e.g. ``("z", "y", "x")``.
    units
        ``"voxel"`` (default): sigmas are in voxels. ``"physical"``: sigmas are in the
        image's physical units and divided by ``voxel_size`` per axis.
    """
    dims_t = tuple(dims)
    if units not in ("voxel", "physical"):
        raise _bad(f"units must be 'voxel' or 'physical', got {units!r}", "units")
    steps = []
    for step_name, p in _steps_of(name, params):
        spec = FILTERS.get(step_name)
        if spec is None:
            raise _bad(f"unknown filter {step_name!r}; known: {sorted(FILTERS)}", "name")
        if units == "physical":
            p = _to_voxels(spec, p, dims_t, voxel_size)
        radius, call, *crops = spec.prepare(dict(p), dims_t)
        crops += [None] * (2 - len(crops))
        steps.append(FilterStep(spec.name, p, tuple(int(r) for r in radius), call,
                                crops[0], crops[1]))
    return FilterChain(tuple(steps), dims_t)


def _to_voxels(spec: FilterSpec, p: dict[str, Any], dims: tuple[str, ...],
               voxel_size: Mapping[str, float] | None) -> dict[str, Any]:
    if not spec.physical:
        raise _bad(f"filter {spec.name!r} has no physical-unit parameters; sizes are in "
                   "voxels", "units")
    if voxel_size is None:
        raise _bad("units='physical' needs the image's voxel size", "units")
    out = dict(p)
    for key in spec.physical:
        if out.get(key) is not None:
            vals = _per_axis(out[key], dims, key, minimum=0.0)
            out[key] = tuple(v / float(voxel_size[d]) for v, d in zip(vals, dims, strict=True))
    return out


def filter_radius(name: Any, dims: Sequence[str], **params: Any) -> tuple[int, ...]:
    """Exact halo radius per spatial axis that a filter or chain needs."""
    return prepare_filter(name, dims, **params).radius


def _halo_spec(for_filter: Any) -> tuple[Any, dict[str, Any]]:
    """``(name-or-chain, params)`` from ``"median"``, ``("gaussian", {...})`` or a chain."""
    if isinstance(for_filter, str):
        return for_filter, {}
    if (isinstance(for_filter, Sequence) and len(for_filter) == 2
            and isinstance(for_filter[0], str) and isinstance(for_filter[1], Mapping)):
        return for_filter[0], dict(for_filter[1])
    return for_filter, {}


@dataclass(frozen=True, eq=False)
class HaloDepthRule:
    """The halo a filter (or chain) needs on one level of an image, for ``to_halo``.

    Called with a level's ``(dims, voxel_size)``, it returns the filter's exact radius per
    dim (0 on ``t`` and ``c``) and the boundary mode named in the params (``None`` if none);
    sigmas with ``"units": "physical"`` are converted with that level's voxel size. This is
    how ``for_filter=`` becomes voxel depths: halo storage knows depths only.
    """

    name: Any
    params: Mapping[str, Any]

    def __call__(self, dims: tuple[str, ...], voxel_size: Mapping[str, float]
                 ) -> tuple[tuple[int, ...], str | None]:
        params = dict(self.params)
        mode = params.pop("mode", None)
        params.pop("cval", None)
        spatial = tuple(d for d in dims if d in SPATIAL)
        chain = prepare_filter(self.name, spatial, voxel_size=voxel_size, **params)
        it = iter(chain.radius)
        return tuple(next(it) if d in SPATIAL else 0 for d in dims), mode


def halo_depth_rule(for_filter: Any) -> HaloDepthRule:
    """The depth rule for ``for_filter=``: ``"median"``, ``("gaussian", {"sigma": 5})`` or a
    chain ``[(name, params), ...]`` (see :func:`voxzarr.halo.write_halo`)."""
    if isinstance(for_filter, HaloDepthRule):
        return for_filter
    name, params = _halo_spec(for_filter)
    return HaloDepthRule(name, params)


class _Kernel:
    """Picklable block kernel: the chain over every leading (t, c) plane, on CPU or GPU.

    Callable on a block (returns the filtered block) or, since ``wants_core`` is set,
    through :meth:`run_core`, which returns only the core and lets separable filters skip
    the halo rows early.
    """

    wants_core = True

    def __init__(self, chain: FilterChain, mode: str, cval: float, device: str, n_lead: int):
        self.chain, self.mode, self.cval = chain, mode, float(cval)
        self.device, self.n_lead = device, n_lead

    def __call__(self, block: Any) -> Any:
        return self.run_core(block, tuple(slice(0, n) for n in block.shape))

    def __dask_tokenize__(self) -> Any:
        # what determines the kernel (a step's call is made from its registered name and
        # validated parameters); dask would otherwise pickle the whole object to hash it
        from dask.base import normalize_token

        steps = [(st.name, normalize_token(dict(st.params)), st.radius)
                 for st in self.chain.steps]
        return ("voxzarr-filter-kernel", steps, self.chain.dims, self.mode, self.cval,
                self.device, self.n_lead)

    def run_core(self, block: Any, core: tuple[slice, ...]) -> Any:
        if self.device == "gpu":
            import cupy
            import cupyx.scipy.ndimage as cndi

            out = self._run(cupy.asarray(block), core, cndi, cupy)
            # results go back where the block came from (host blocks from a zarr store)
            return out if _xp.is_cupy(block) else out.get()
        return self._run(_xp.to_host(block), core, sndi, np)

    def _run(self, x: Any, core: tuple[slice, ...], ndi: Any, xp: Any) -> Any:
        lead, spatial = core[: self.n_lead], core[self.n_lead:]
        x = x[lead] if lead else x
        if self.n_lead == 0:
            return self.chain.run_core(x, spatial, self.mode, self.cval, ndi, xp)
        out = None
        for idx in np.ndindex(*x.shape[: self.n_lead]):
            res = self.chain.run_core(x[idx], spatial, self.mode, self.cval, ndi, xp)
            if out is None:
                out = xp.empty(x.shape[: self.n_lead] + res.shape, dtype=res.dtype)
            out[idx] = res
        return out


# --------------------------------------------------------------------------- entry point
def apply_filter(
    obj: xr.DataArray,
    name: Any,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    device: str = "cpu",
    units: str = "voxel",
    halo: str = "auto",
    location: Any = None,
    level: int | str | None = None,
    **params: Any,
) -> xr.DataArray:
    """Filter an image chunk by chunk, with exactly the whole-image result.

    Parameters
    ----------
    obj
        Image DataArray (dask, numpy or cupy backed) with dims from ``t, c, z, y, x``.
    name
        Registered filter name (see :data:`FILTERS`) or a chain: a list of
        ``(name, params)`` pairs, applied in order (radius = sum of radii).
    mode, cval
        Boundary handling at the image edge, as in ``scipy.ndimage``: ``reflect``,
        ``nearest``, ``mirror``, ``constant`` (with ``cval``) or ``wrap``.
    device
        ``"cpu"`` (scipy.ndimage, default), ``"gpu"`` (cupyx.scipy.ndimage's results; the
        Gaussian passes run voxzarr's own kernels, bit-identical to cupyx and about 3x
        faster) or ``"auto"``.
    units
        ``"voxel"`` (default) or ``"physical"`` for sigmas in the image's physical units.
    halo
        ``"auto"``: read blocks from the stored halo when ``obj`` is an untouched
        :func:`voxzarr.open_image` read (or ``location`` is given) and the halo is fresh,
        deep enough and built for this boundary (periodic for ``wrap``); otherwise gather
        neighbours at run time (a stale halo warns and is not used). ``"require"``: raise
        instead of falling back. ``"never"``: always gather at run time.
    location, level
        The OME-Zarr image (and level) whose halo to use when ``obj`` does not say.
    **params
        The filter's parameters (``sigma=2``, ``size=3``, ``weights=...``).

    Returns
    -------
    xarray.DataArray
        Lazy (dask) result with ``obj``'s coords, attrs and name; dtype as scipy gives it
        (float32 / float64 for difference_of_gaussians). Chunks: ``obj``'s, except that
        CuPy-backed input filtered on the GPU runs on a few large blocks (the whole array
        when it fits in an eighth of free GPU memory; see
        :func:`voxzarr._xp.gpu_block_chunks`), which the result keeps. When that is one
        block over one CuPy array already in GPU memory, the filter runs at call time
        (asynchronously on the current CuPy stream) and the result is a view of its output:
        there is no graph left to schedule.
    """
    if not isinstance(obj, xr.DataArray):
        raise _bad(f"expects an image DataArray, got {type(obj).__name__}", "obj")
    if mode not in MODES:
        raise _bad(f"mode must be one of {MODES}, got {mode!r}", "mode")
    if halo not in ("auto", "require", "never"):
        raise _bad(f"halo must be 'auto', 'require' or 'never', got {halo!r}", "halo")
    dims = tuple(str(d) for d in obj.dims)
    spatial = tuple(d for d in dims if d in SPATIAL)
    if not spatial:
        raise _bad(f"no spatial axis in dims {dims}", "dims")
    n_lead = dims.index(spatial[0])
    if dims[n_lead:] != spatial:
        raise _bad(f"spatial axes must come last (NGFF order), got dims {dims}", "dims")
    voxel_size = None
    if units == "physical":
        voxel_size = geometry(obj).require_scale(spatial)
    chain = prepare_filter(name, spatial, units=units, voxel_size=voxel_size, **params)
    dev = _xp.resolve_device(device, obj.data)
    try:
        out_dtype = chain.out_dtype(obj.dtype)
    except VoxzarrError:
        raise
    except Exception as err:
        raise _bad(f"the filter cannot run on dtype {obj.dtype} ({type(err).__name__}: "
                   f"{err})", "dtype") from None
    kernel = _Kernel(chain, mode, cval, dev, n_lead)
    depth = (0,) * n_lead + chain.radius
    periodic = tuple(d in spatial and mode == "wrap" for d in dims)

    data = None
    if halo != "never":
        data = _from_halo(obj, kernel, depth, periodic, out_dtype, location, level,
                          required=halo == "require")
    if data is None:
        data = _from_overlap(obj, kernel, depth, periodic, out_dtype)
    # a shallow copy keeps coords, indexes, attrs and name without xarray's deep copy of
    # every coordinate (most of the call's time on data already in GPU memory)
    return obj.copy(deep=False, data=data)


def _from_overlap(obj: xr.DataArray, kernel: _Kernel, depth: tuple[int, ...],
                  periodic: tuple[bool, ...], dtype: np.dtype) -> da.Array:
    from .halo.graph import overlap_map
    from .io import default_chunks

    src = obj.data
    if not isinstance(src, da.Array):
        src = da.from_array(src, chunks=default_chunks(obj.dims, obj.shape))
    on_gpu = kernel.device == "gpu" and _xp.is_cupy(src._meta)
    if on_gpu:  # data already on the GPU: run on a few large blocks (they stay large)
        eager = _on_gpu_now(src, kernel, dtype)
        if eager is not None:
            return eager
        blocks = _xp.gpu_block_chunks(src)
        if blocks is not None:  # views of the array when it is one in GPU memory
            src = _xp.rechunk_in_memory(src, blocks)
    meta = _xp.empty_meta(src._meta if on_gpu else np.empty(0), src.ndim, dtype)
    return overlap_map(src, kernel, depth, periodic, dtype, meta=meta,
                       prefix="voxzarr-filter")


def _on_gpu_now(src: da.Array, kernel: _Kernel, dtype: np.dtype) -> da.Array | None:
    """Filter one CuPy array in GPU memory at call time, or ``None`` to build a graph.

    When ``src`` merely slices one CuPy array (:func:`voxzarr._xp.whole_array`) that the
    GPU block policy runs as a single block, the one task a graph would hold is this very
    call: running it now (CuPy launches it asynchronously on the current stream, so the
    call returns at once) saves the graph building and the scheduler's round trip, which
    cost as much as the kernel. The result is the same one-block array a graph would give.
    """
    base = _xp.whole_array(src)
    if base is None or not _xp.is_cupy(base):
        return None
    if src.npartitions > 1 and _xp.gpu_block_chunks(src) != tuple(src.shape):
        return None  # too large for one block: several blocks need the overlap graph
    if src.npartitions == 1 and _xp.gpu_block_chunks(src, shape=src.shape,
                                                     dtype=dtype) is None:
        return None
    from ._views import dask_view

    out = kernel(base)  # one block: edges by ``mode``, as the one-block graph does
    if out.dtype != dtype:
        out = out.astype(dtype, copy=False)
    return dask_view(out, out.shape)


def _from_halo(obj: xr.DataArray, kernel: _Kernel, depth: tuple[int, ...],
               periodic: tuple[bool, ...], dtype: np.dtype, location: Any,
               level: int | str | None, *, required: bool) -> da.Array | None:
    """The filtered data from the stored halo, or ``None`` (with the reason) to fall back."""
    from .halo import find_source, open_halo

    source = find_source(obj) if location is None else (location, level or 0)
    if source is None:
        if required:
            raise HaloError("halo='require' but the image was not opened from a store (or "
                            "was modified since); pass location= and level=", field="halo")
        return None
    try:
        h = open_halo(source[0], level=source[1])
        if h.dims != tuple(obj.dims) or h.shape != tuple(obj.shape):
            raise HaloError(f"the stored image {h.dims} {h.shape} is not this image "
                            f"{tuple(obj.dims)} {tuple(obj.shape)}", field="shape")
        bad = [d for d, p, r, hp in zip(h.dims, periodic, depth, h.periodic_axes, strict=True)
               if r > 0 and p != hp]
        if bad:
            want = "periodic (to_halo(periodic=...))" if any(periodic) else "not periodic"
            raise HaloError(f"mode needs a halo that is {want} on axes {bad}", field="periodic")
        return h.map_blocks(kernel, depth=dict(zip(h.dims, depth, strict=True)),
                            dtype=dtype).data
    except StaleHaloError as err:
        if required:
            raise
        warnings.warn(f"not using the stale halo ({err}); gathering neighbours at run time. "
                      "Rebuild it with to_halo or open_halo(..., rebuild=True).",
                      stacklevel=4)
        return None
    except VoxzarrError:
        if required:
            raise
        return None
