"""The separable path on CuPy: one fused CUDA kernel resamples all axes of a region.

The kernels are compiled with :class:`cupy.RawKernel` on first use, once per variant (data
types, taps per axis, vector width); CuPy is imported only then.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

_CTYPES = {
    "bool": "bool", "uint8": "unsigned char", "int8": "signed char",
    "uint16": "unsigned short", "int16": "short", "uint32": "unsigned int", "int32": "int",
    "uint64": "unsigned long long", "int64": "long long", "float32": "float",
    "float64": "double",
}


# The kernel sources are CUDA files in ``cuda/`` beside this module, read on first use
# (importing voxzarr needs neither CuPy nor them) and handed to NVRTC as they are, after the
# ``#define`` lines that pick a variant (:func:`_separable_kernel`). ``NAME.cu`` defines the
# kernel ``NAME``:
#
# ``vz_separable.cu``, the reference kernel: a block computes whole output rows (fixed batch,
# z, y): the KZ * KY input rows a row reads and their weights are looked up once, then the
# threads stride along x, each output voxel reading KX taps per input row and being written
# once. A tap index < 0 reads cval. It is the fallback for regions of 2^31 output rows or
# more, and the yardstick the fast kernel must equal bit for bit
# (tests/ndinterp/test_gpu_resample.py).
#
# ``vz_fast_cvt.cuh``: exact conversions for the fast kernel on full-rate ALU instructions
# rather than the quarter-rate conversion unit, which bounds 16-bit data otherwise. 2^23 + n
# (n < 2^23) is the float whose mantissa bits are n, so OR-ing n into 2^23's bits and
# subtracting 2^23 gives (float)n exactly; adding 2^23 rounding down leaves floor(y) in the
# mantissa for 0 <= y < 2^23. Half away from zero is floor(|c| + 0.5) with c's sign (the float
# adds round symmetrically). Each equals the reference kernel's cast bit for bit.
#
# ``vz_zwalk.cu``, the fast kernel. A thread owns one (batch, y, x) output column and walks ZR
# output planes along z, re-reading its input taps only when a plane's z taps differ from the
# previous plane's: upsampling z by f (the usual isotropy case) reads each tap 1 / f as often,
# so the kernel streams output instead of re-fetching input rows from L2. The y and x taps and
# weights of the column are loaded once. Where x passes through (``XPASS``: z and/or y
# resampled only) a thread owns VEC contiguous voxels, loaded and stored as one 16-byte (or
# narrower, where rows are not so aligned) vector, with no x taps at all. Stores bypass L2
# retention (``__stcs``) so input planes stay cached. Per voxel the arithmetic is the
# reference kernel's term for term, with explicit fma so the compiler cannot round
# differently; with a pass-through x the reference's x weight is exactly 1.

#: the kernels :func:`_separable_kernel` compiles, each from ``cuda/<name>.cu``
_KERNEL_NAMES = ("vz_separable", "vz_zwalk")
#: the device functions the fast kernel's conversions use (prepended to ``vz_zwalk.cu``)
_FAST_CVT_FILE = "vz_fast_cvt.cuh"


@functools.cache
def _cuda_source(filename: str) -> str:
    """The text of ``cuda/<filename>``, read once (package data, found through
    :mod:`importlib.resources` so that it works from a wheel or a zip too)."""
    return resources.files(__package__).joinpath("cuda", filename).read_text(encoding="utf-8")


_STORE_TYPES = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "uint2",
                16: "uint4"}


def _fast_cvt(src: np.dtype, wt: np.dtype, dst: np.dtype) -> str:
    """``TOWT`` / ``STORE`` macros of the fast kernel: the conversions of
    ``vz_fast_cvt.cuh`` where they apply (float32 arithmetic on 8- and 16-bit integers), else
    the reference casts."""
    short = ("uint8", "uint16", "int8", "int16")
    if wt != np.float32 or src.name not in short:
        towt = "((WT)(s))"
    elif src.kind == "u":
        towt = "vz_u2f((unsigned)(s))"
    else:  # (float)(s + 32768) - 32768, both steps exact
        towt = "(vz_u2f((unsigned)((int)(s) + 32768)) - 32768.0f)"
    if wt != np.float32 or dst.name not in short:
        return f"#define TOWT(s) {towt}\n#define STORE(v) {_store_expr(dst, _CTYPES[wt.name])}\n"
    info = np.iinfo(dst)
    clip = f"fminf(fmaxf((v), {float(info.min)!r}f), {float(info.max)!r}f)"
    if dst.kind == "u":
        store = f"((DST)vz_floor_u({clip} + 0.5f))"
    else:
        store = (f"((DST)(({clip}) >= 0.0f ? (int)vz_floor_u(fabsf({clip}) + 0.5f) "
                 f": -(int)vz_floor_u(fabsf({clip}) + 0.5f)))")
    return f"#define TOWT(s) {towt}\n#define STORE(v) {store}\n"


def _store_expr(dtype: np.dtype, wt: str) -> str:
    """C expression casting the accumulator ``v`` like :func:`_cast` does."""
    if dtype.kind == "b":
        return "((v) > (WT)0.5)"
    if dtype.kind not in "iu":
        return "((DST)(v))"
    info = np.iinfo(dtype)
    clip = f"fmin(fmax((v), ({wt})({float(info.min)!r})), ({wt})({float(info.max)!r}))"
    if dtype.kind == "u":
        return f"((DST)floor({clip} + ({wt})0.5))"
    return (f"((DST)({clip} >= 0 ? floor({clip} + ({wt})0.5) "
            f": ceil({clip} - ({wt})0.5)))")


_KERNELS: dict[tuple[Any, ...], Any] = {}
#: output planes one thread of ``vz_zwalk`` walks (32: within 10 % of the best of 8-64 for
#: z-only and all-axes upsampling on an H100)
_ZR = 32


def _separable_kernel(name: str, src: np.dtype, wt: np.dtype, dst: np.dtype,
                      k: tuple[int, int, int], **extra: int) -> Any:
    """Compile (once per variant) ``vz_separable`` (reference) or ``vz_zwalk``."""
    key = (name, src.str, wt.str, dst.str, k, tuple(sorted(extra.items())))
    if key not in _KERNELS:
        import cupy

        wt_c = _CTYPES[wt.name]
        defs = (f"#define SRC {_CTYPES[src.name]}\n#define WT {wt_c}\n"
                f"#define DST {_CTYPES[dst.name]}\n#define KZ {k[0]}\n#define KY {k[1]}\n"
                f"#define KX {k[2]}\n")
        defs += "".join(f"#define {n.upper()} {v}\n" for n, v in extra.items())
        if name == "vz_separable":
            defs += f"#define STORE(v) {_store_expr(dst, wt_c)}\n"
        else:
            defs += _fast_cvt(src, wt, dst) + _cuda_source(_FAST_CVT_FILE)
            size = extra.get("dalign", dst.itemsize)
            defs += f"#define VSTORE {_STORE_TYPES[size]}\n"
        _KERNELS[key] = cupy.RawKernel(defs + _cuda_source(f"{name}.cu"), name)
    return _KERNELS[key]


def _fused_plan(shape: tuple[int, ...], tables: Sequence[Any]) -> Any:
    """Lay a region out as ``(batch, z, y, x)`` for the fused kernel, or ``None``.

    It fits when at most three trailing axes are resampled and any leading axes (t, c)
    pass through unchanged: those fold into the batch. Returns ``(batch, taps, weights,
    out_shape)`` with per-axis ``(m, k)`` tap tables (``-1`` = cval) and weights for the
    three trailing axes (length-1 axes prepended for 1-D and 2-D data).
    """
    ndim = len(shape)
    lead = 0
    while lead < ndim and tables[lead] is None:
        lead += 1
    lead = min(lead, max(ndim - 3, 0))
    if ndim - lead > 3:
        return None
    spatial = list(range(lead, ndim))
    taps, weights, sizes_out = [], [], []
    for ax in [None] * (3 - len(spatial)) + spatial:
        n = 1 if ax is None else shape[ax]
        t = None if ax is None else tables[ax]
        idx, w = (np.arange(n, dtype=np.int64)[:, None], None) if t is None else t
        taps.append(np.ascontiguousarray(np.where(idx >= n, -1, idx), dtype=np.int32))
        weights.append(np.ones((idx.shape[0], 1)) if w is None else np.ascontiguousarray(w))
        sizes_out.append(idx.shape[0])
    batch = int(np.prod(shape[:lead], dtype=np.int64))
    out_shape = tuple(shape[:lead]) + tuple(sizes_out[3 - len(spatial):])
    return batch, taps, weights, out_shape


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _vector_width(xo: int, src: Any, out: Any) -> int:
    """Voxels per load / store in ``vz_zwalk``: the widest of 8, 4, 2, 1 that keeps every
    row start aligned and moves at most 16 bytes."""
    si, di = src.dtype.itemsize, out.dtype.itemsize
    for v in (8, 4, 2):
        if (xo % v == 0 and v * max(si, di) <= 16 and src.data.ptr % (v * si) == 0
                and out.data.ptr % (v * di) == 0):
            return v
    return 1


def _gpu_separable(region: Any, tables: Sequence[Any], cval: float, dtype: np.dtype,
                   cdtype: np.dtype, reference: bool = False) -> Any:
    """All axes in one fused CuPy kernel; ``None`` where the layout does not fit it.

    Runs ``vz_zwalk``; ``reference`` (tests, benchmarks) or a region too large for its
    32-bit indices runs ``vz_separable``. Both give the same result bit for bit.
    """
    import cupy

    plan = _fused_plan(region.shape, tables)
    if plan is None or region.dtype.name not in _CTYPES or dtype.name not in _CTYPES:
        return None
    batch, taps, weights, out_shape = plan
    src = cupy.ascontiguousarray(region)
    out = cupy.empty(out_shape, dtype=dtype)
    if out.size == 0:
        return out
    ks = tuple(t.shape[1] for t in taps)
    sizes_in = [1] * (3 - min(3, region.ndim)) + list(region.shape[-3:])
    zo, yo, xo = (t.shape[0] for t in taps)
    wt = np.float32 if cdtype == np.float32 else np.float64
    dev_taps = [cupy.asarray(t) for t in taps]
    dev_w = [cupy.asarray(w, dtype=cdtype) for w in weights]
    zi, yi, xi = (np.int64(n) for n in sizes_in)
    src_t, dst_t = np.dtype(src.dtype), np.dtype(dtype)
    nzr = _cdiv(zo, _ZR)
    if reference or batch * nzr >= 2**31 or xo * ks[2] >= 2**31 or yo >= 2**31:
        kernel = _separable_kernel("vz_separable", src_t, cdtype, dst_t, ks)
        threads = 256 if xo > 128 else 128
        grid = (1, min(yo, 65535), min(batch * zo, 65535))
        kernel(grid, (threads,), (src, dev_taps[0], dev_w[0], dev_taps[1], dev_w[1],
                                  dev_taps[2], dev_w[2], zi, yi, xi, np.int32(zo),
                                  np.int32(yo), np.int32(xo), np.int64(batch * zo),
                                  wt(cval), out))
        return out
    xpass = tables[-1] is None  # x passes through: vector loads, no x taps
    vec = _vector_width(xo, src, out) if xpass else 1
    xu = xo // vec  # x in units of VEC voxels
    tx = min(256, _cdiv(xu, 32) * 32)
    kernel = _separable_kernel(
        "vz_zwalk", src_t, cdtype, dst_t, ks[:2] + ((1,) if xpass else ks[2:]), vec=vec,
        salign=vec * src.dtype.itemsize, dalign=vec * out.dtype.itemsize,
        has_cval=int(any(int(t.min()) < 0 for t in taps)), xpass=int(xpass), zr=_ZR)
    grid = (_cdiv(xu, tx), min(yo, 65535), min(batch * nzr, 65535))
    kernel(grid, (tx,), (src, dev_taps[0], dev_w[0], dev_taps[1], dev_w[1], dev_taps[2],
                         dev_w[2], zi, yi, np.int64(xi // vec), np.int32(zo), np.int32(yo),
                         np.int32(xu), np.int32(nzr), np.int32(batch * nzr), wt(cval), out))
    return out
