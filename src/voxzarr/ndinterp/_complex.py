"""Complex input: the real and imaginary parts are transformed separately, as scipy does."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np

from .._xp import array_module, empty_meta
from ..errors import GeometryError, InterpolationArgumentError


def _complex_output(output: Any, dtype: np.dtype) -> np.dtype:
    """The complex result dtype, as scipy's ``_get_output`` picks it for complex input."""
    if output is None:
        return np.promote_types(dtype, np.complex64)
    if isinstance(output, str):
        out = np.dtype(output)
        if out.kind != "c":
            raise InterpolationArgumentError("output must have complex dtype for complex input",
                                             field="output")
        return out
    if hasattr(output, "dtype") and not isinstance(output, type | np.dtype):
        raise GeometryError("output must be a dtype for dask arrays (results are new arrays)",
                            field="output")
    out = np.dtype(output)
    if out.kind != "c":
        warnings.warn("promoting specified output dtype to complex", UserWarning, stacklevel=3)
        out = np.promote_types(out, np.complex64)
    return out


def _join_complex(re: Any, im: Any, dtype: np.dtype) -> Any:
    # assign the parts: ``re + 1j * im`` would turn an infinite imaginary part into a NaN
    # real part (inf * 0)
    out = array_module(re).empty(re.shape, dtype=dtype)
    out.real = re
    out.imag = im
    return out


def _complex_parts(func: Callable[..., da.Array]) -> Callable[..., da.Array]:
    """Decorator: a complex input runs ``func`` on its real and imaginary parts.

    scipy.ndimage processes the two parts independently (with ``cval`` split likewise) and
    so does this, then joins the two lazy results chunk by chunk.
    """
    sig = inspect.signature(func)
    data_arg = next(iter(sig.parameters))

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> da.Array:
        bound = sig.bind(*args, **kwargs)
        data = bound.arguments[data_arg]
        if not hasattr(data, "dtype"):
            data = np.asarray(data)
        if np.dtype(data.dtype).kind != "c":
            return func(*args, **kwargs)
        bound.apply_defaults()
        arr = data if isinstance(data, da.Array) else da.asarray(data)
        out = _complex_output(bound.arguments.get("output"), np.dtype(arr.dtype))
        part_dtype = np.dtype(out.char.lower())  # F -> f, D -> d, G -> g
        cval = bound.arguments.get("cval", 0.0)
        parts = []
        for part, take in ((arr.real, np.real), (arr.imag, np.imag)):
            call = dict(bound.arguments, **{data_arg: part, "output": part_dtype})
            if "cval" in call:
                call["cval"] = float(take(cval))
            parts.append(func(**call))
        re, im = parts
        return da.map_blocks(_join_complex, re, im.rechunk(re.chunks), out, dtype=out,
                             meta=empty_meta(re._meta, re.ndim, out))

    return wrapper
