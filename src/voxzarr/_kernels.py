"""Compiled 1-D filter passes (numba) that reproduce ``scipy.ndimage`` bit for bit.

voxzarr's separable filters run one 1-D pass per axis and keep, after each pass, only the
rows later passes still need (see :mod:`voxzarr.filters`). scipy computes every output of a
pass, halo rows included, and copies each line (strided for all but the last axis) into a
double buffer first. The kernels here compute only the kept outputs, read the input in place
and run their innermost loop over contiguous memory, so LLVM vectorises it.

Exactness: each output is scipy's own sequence of double operations (``correlate1d`` in
scipy's ``ni_filters.c``): inputs are converted to double; for an odd, symmetric kernel
(within ``DBL_EPSILON``, scipy's test) ``out = x[0] * w[c]`` then ``out += (x[-j] + x[j]) *
w[c - j]`` for ``j = size1 .. 1``; antisymmetric kernels use ``(x[-j] - x[j])``; any other
kernel ``out = x[size2] * w[-1]`` then ``out += x[j] * w[c + j]`` for ``j = -size1 ..
size2 - 1``. Outside the array, values follow scipy's line extension for each mode
(``constant`` uses ``cval`` as a double). The double result is converted to the output dtype
as C does: rounding to nearest for float32, truncation toward zero for unsigned integers.
C leaves integer conversion of out-of-range values to the platform, so a pass whose result
leaves ``(-1, max + 1)`` is redone with scipy; integer outputs of kernels with negative
weights (derivatives of unsigned images) go to scipy directly. No fast-math, no FMA
contraction (numba does neither unless asked), so the arithmetic matches.

Covered: ``correlate1d`` with origin 0 and any weights on uint8 / uint16 / float32 / float64
arrays (output dtype = input dtype; non-contiguous input is copied first) in every mode,
hence ``gaussian_filter1d`` of any order. Anything else returns ``None`` and the caller
uses scipy. Set ``ENABLED = False`` (or the environment variable ``VOXZARR_NO_JIT=1``) to
always use scipy.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import scipy.ndimage as sndi

from ._pool import cores, pmap

try:  # numba is a dependency; without it (or if it fails to import) scipy does the work
    import numba

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover - depends on the environment
    _HAVE_NUMBA = False

__all__ = ["ENABLED", "available", "correlate1d_kept", "gaussian1d_kept", "gaussian_weights",
           "lerp_pass", "round_to_int"]

#: module switch: ``False`` sends every pass to scipy (tests compare both paths)
ENABLED: bool = os.environ.get("VOXZARR_NO_JIT", "") in ("", "0")

_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32),
           np.dtype(np.float64))
_MODES = ("nearest", "wrap", "reflect", "mirror", "constant")
_BLOCK = 512  # outputs per tile of the contiguous axis: accumulators stay in L1
_LINES = 64  # lines filtered together along the contiguous axis (vector lanes)


def available() -> bool:
    """Whether the compiled path is in use (numba importable and :data:`ENABLED`)."""
    return _HAVE_NUMBA and ENABLED


# --------------------------------------------------------------------------- weights, indices
def gaussian_weights(sigma: float, order: int, truncate: float, radius: int | None
                     ) -> np.ndarray:
    """The weights ``scipy.ndimage.gaussian_filter1d`` passes to ``correlate1d``.

    Cached (every block of a chunked filter asks for the same few): the array returned is
    shared, so callers must not modify it.
    """
    return _gaussian_weights(float(sigma), int(order), float(truncate),
                             None if radius is None else int(radius))


@functools.lru_cache(maxsize=256)
def _gaussian_weights(sigma: float, order: int, truncate: float, radius: int | None
                      ) -> np.ndarray:
    lw = int(truncate * float(sigma) + 0.5) if radius is None else int(radius)
    try:
        from scipy.ndimage._filters import _gaussian_kernel1d
    except ImportError:  # pragma: no cover - private helper moved: recover it exactly
        # the impulse response of a float64 unit impulse is the (reversed) weights, exactly:
        # every product is w * 1.0 or w * 0.0 and every sum adds zeros
        imp = np.zeros(2 * lw + 1)
        imp[lw] = 1.0
        resp = sndi.gaussian_filter1d(imp, sigma, order=order, mode="constant",
                                      truncate=truncate, radius=lw)
        return np.ascontiguousarray(resp[::-1], dtype=np.float64)
    return np.ascontiguousarray(_gaussian_kernel1d(sigma, order, lw)[::-1], dtype=np.float64)


def _symmetry(w: np.ndarray) -> int:
    """scipy's kernel test: 1 symmetric, -1 antisymmetric, 0 neither (or even length)."""
    n = w.size
    if n % 2 == 0:
        return 0
    c, eps = n // 2, np.finfo(np.float64).eps
    left, right = w[c - 1::-1] if c else w[:0], w[c + 1:]
    if not np.any(np.abs(right - left) > eps):  # "> eps" breaks, as in scipy (NaN does not)
        return 1
    if not np.any(np.abs(right + left) > eps):
        return -1
    return 0


def _source_index(pos: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Where scipy's line extension reads position ``pos`` of a line of length ``n``.

    ``-1`` means ``cval`` (constant mode). Positions inside ``[0, n)`` map to themselves.
    """
    pos = np.asarray(pos, dtype=np.int64)
    if mode == "constant":
        return np.where((pos >= 0) & (pos < n), pos, -1)
    if mode == "nearest" or (mode == "mirror" and n == 1):  # scipy: mirror of 1 is nearest
        return np.clip(pos, 0, n - 1)
    if mode == "wrap":
        return np.mod(pos, n)
    if mode == "reflect":  # period 2n: abcd|dcbaabcd
        m = np.mod(pos, 2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    # mirror, period 2n - 2: abcd|cbabcd
    p = 2 * n - 2
    m = np.mod(pos, p)
    return np.where(m < n, m, p - m)


# --------------------------------------------------------------------------- compiled loops
if _HAVE_NUMBA:
    _jit = numba.njit(cache=True, nogil=True)

    @_jit
    def _store(acc, orow, nb, lim, is_int):  # pragma: no cover - compiled
        """Convert the double results to the output row; count out-of-range integers."""
        bad = 0
        if is_int:
            for b in range(nb):
                v = acc[b]
                ok = (v > -1.0) & (v < lim)
                bad += not ok
                v = v if ok else 0.0
                orow[b] = v if v > 0.0 else 0.0  # (-1, 0) truncates to 0, as in C
        else:
            for b in range(nb):
                orow[b] = acc[b]
        return bad

    @_jit
    def _pass_outer(src, w, sym, table, cval, out, lim, is_int):  # pragma: no cover
        """Correlate along axis 1 of ``src`` (A, N, B); ``out`` is (A, K, B).

        ``table[k, t]``: the source row of tap ``t`` for output row ``k`` (-1: cval). The
        innermost loops run along the contiguous axis B, tile by tile.
        """
        n_a, _, n_b = src.shape
        n_k, n_t = table.shape
        size1 = n_t // 2
        size2 = n_t - size1 - 1
        acc = np.empty(min(_BLOCK, n_b))
        bad = 0
        for a in range(n_a):
            for b0 in range(0, n_b, _BLOCK):
                nb = min(_BLOCK, n_b - b0)
                for k in range(n_k):
                    if sym != 0:
                        wc = w[size1]
                        p = table[k, size1]
                        if p >= 0:
                            r = src[a, p, b0:b0 + nb]
                            for b in range(nb):
                                acc[b] = np.float64(r[b]) * wc
                        else:
                            v = cval * wc
                            for b in range(nb):
                                acc[b] = v
                        for t in range(size1):
                            wt = w[t]
                            p1 = table[k, t]
                            p2 = table[k, n_t - 1 - t]
                            if p1 >= 0 and p2 >= 0:
                                r1 = src[a, p1, b0:b0 + nb]
                                r2 = src[a, p2, b0:b0 + nb]
                                if sym > 0:
                                    for b in range(nb):
                                        acc[b] += (np.float64(r1[b]) + np.float64(r2[b])) * wt
                                else:
                                    for b in range(nb):
                                        acc[b] += (np.float64(r1[b]) - np.float64(r2[b])) * wt
                            elif p1 >= 0:
                                r1 = src[a, p1, b0:b0 + nb]
                                if sym > 0:
                                    for b in range(nb):
                                        acc[b] += (np.float64(r1[b]) + cval) * wt
                                else:
                                    for b in range(nb):
                                        acc[b] += (np.float64(r1[b]) - cval) * wt
                            elif p2 >= 0:
                                r2 = src[a, p2, b0:b0 + nb]
                                if sym > 0:
                                    for b in range(nb):
                                        acc[b] += (cval + np.float64(r2[b])) * wt
                                else:
                                    for b in range(nb):
                                        acc[b] += (cval - np.float64(r2[b])) * wt
                            else:
                                v = ((cval + cval) if sym > 0 else (cval - cval)) * wt
                                for b in range(nb):
                                    acc[b] += v
                    else:
                        wl = w[n_t - 1]
                        p = table[k, n_t - 1]
                        if p >= 0:
                            r = src[a, p, b0:b0 + nb]
                            for b in range(nb):
                                acc[b] = np.float64(r[b]) * wl
                        else:
                            v = cval * wl
                            for b in range(nb):
                                acc[b] = v
                        for t in range(size1 + size2):
                            wt = w[t]
                            p = table[k, t]
                            if p >= 0:
                                r = src[a, p, b0:b0 + nb]
                                for b in range(nb):
                                    acc[b] += np.float64(r[b]) * wt
                            else:
                                v = cval * wt
                                for b in range(nb):
                                    acc[b] += v
                    bad += _store(acc, out[a, k, b0:b0 + nb], nb, lim, is_int)
        return bad

    @_jit
    def _pass_inner(src, w, sym, lo, ext_index, cval, out, lim, is_int):  # pragma: no cover
        """Correlate along the last (contiguous) axis of ``src`` (M, N); ``out`` (M, L).

        Lines go in groups of ``_LINES``: each line's window ``[lo - size1, lo + L + size2)``
        is converted to doubles into column ``g`` of ``ext`` (``ext_index``: source of each
        window position, -1 for cval), so the taps then run with the group's lines innermost
        (contiguous, vectorised), like :func:`_pass_outer`.
        """
        n_m, n = src.shape
        n_l = out.shape[1]
        n_t = w.size
        size1 = n_t // 2
        size2 = n_t - size1 - 1
        n_e = n_l + size1 + size2
        start = lo - size1  # source position of window position 0
        e0 = min(max(0, -start), n_e)  # window positions inside [0, n): [e0, e1)
        e1 = max(min(n_e, n - start), e0)
        ext = np.empty((n_e, _LINES))
        acc = np.empty(_LINES)
        bad = 0
        for m0 in range(0, n_m, _LINES):
            ng = min(_LINES, n_m - m0)
            for g in range(ng):
                row = src[m0 + g]
                for e in range(e0):
                    i = ext_index[e]
                    ext[e, g] = cval if i < 0 else np.float64(row[i])
                for e in range(e0, e1):
                    ext[e, g] = np.float64(row[start + e])
                for e in range(e1, n_e):
                    i = ext_index[e]
                    ext[e, g] = cval if i < 0 else np.float64(row[i])
            for j in range(n_l):
                if sym != 0:
                    wc = w[size1]
                    r = ext[j + size1]
                    for g in range(ng):
                        acc[g] = r[g] * wc
                    for t in range(size1):
                        wt = w[t]
                        r1 = ext[j + t]
                        r2 = ext[j + n_t - 1 - t]
                        if sym > 0:
                            for g in range(ng):
                                acc[g] += (r1[g] + r2[g]) * wt
                        else:
                            for g in range(ng):
                                acc[g] += (r1[g] - r2[g]) * wt
                else:
                    wl = w[n_t - 1]
                    r = ext[j + n_t - 1]
                    for g in range(ng):
                        acc[g] = r[g] * wl
                    for t in range(n_t - 1):
                        wt = w[t]
                        r = ext[j + t]
                        for g in range(ng):
                            acc[g] += r[g] * wt
                bad += _store(acc, out[m0:m0 + ng, j], ng, lim, is_int)
        return bad


    # ----------------------------------------------------------------- interpolation passes
    @_jit
    def _lerp_outer(src, i0, i1, w0, w1, out):  # pragma: no cover - compiled
        """``out[a, k, b] = src[a, i0[k], b] * w0[k] + src[a, i1[k], b] * w1[k]``."""
        n_a, _, n_b = src.shape
        for a in range(n_a):
            for k in range(i0.size):
                p = i0[k]
                q = i1[k]
                u = w0[k]
                v = w1[k]
                for b in range(n_b):
                    out[a, k, b] = src[a, p, b] * u + src[a, q, b] * v

    @_jit
    def _lerp_inner(src, i0, i1, w0, w1, out):  # pragma: no cover - compiled
        """The same along the last (contiguous) axis: ``src`` (M, N), ``out`` (M, K)."""
        for m in range(src.shape[0]):
            for k in range(i0.size):
                out[m, k] = src[m, i0[k]] * w0[k] + src[m, i1[k]] * w1[k]

    @_jit
    def _round_flat(x, out, mn, mx, signed, tol, want):  # pragma: no cover - compiled
        """Round half away from zero and clip, as ``ndinterp._cpu._round_cpu`` does in numpy.

        Returns the flat positions within ``tol`` of a rounding tie (when ``want``) and
        whether a NaN was met (its integer conversion is the platform's: caller redoes it).
        Runs in tiles: a branch-free (vectorised) loop rounds and marks the tile's
        near-ties and NaNs; only a tile that has some is scanned again to list them.
        """
        n = x.size
        hi_t = 1.0 - tol
        ties = np.empty(64, dtype=np.int64)
        nt = 0
        nan = False
        mk = np.empty(_BLOCK, dtype=np.uint8)  # 1 where near a tie or NaN
        for s in range(0, n, _BLOCK):
            xs = x[s:s + _BLOCK]  # views indexed from 0: no wrap-around checks, vectorised
            os = out[s:s + _BLOCK]
            flag = 0
            if signed:
                for i in range(xs.size):
                    xv = np.float64(xs[i])
                    b = abs(xv) + 0.5  # half away from zero: |x| half up, sign restored
                    low = np.floor(b)
                    d = b - low
                    f = (d < tol) | (d > hi_t) | (xv != xv)
                    mk[i] = f
                    flag += f
                    os[i] = min(max(np.copysign(low, xv), mn), mx)
            else:
                for i in range(xs.size):
                    xv = np.float64(xs[i])
                    b = xv + 0.5
                    low = np.floor(b)
                    d = b - low
                    f = (d < tol) | (d > hi_t) | (xv != xv)
                    mk[i] = f
                    flag += f
                    os[i] = min(max(low, mn), mx)
            if flag == 0:
                continue
            for i in range(xs.size):
                if mk[i] == 0:
                    continue
                if xs[i] != xs[i]:
                    nan = True
                elif want:
                    if nt == ties.size:
                        grown = np.empty(2 * nt, dtype=np.int64)
                        grown[:nt] = ties
                        ties = grown
                    ties[nt] = s + i
                    nt += 1
        return ties[:nt], nan


# integer-valued lerp sources the compiled pass takes (as numpy converts them to float)
_LERP_SRC = tuple(np.dtype(t) for t in ("u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8",
                                        "f4", "f8"))
_ROUND_DST = tuple(np.dtype(t) for t in ("u1", "u2", "u4", "i1", "i2", "i4"))


def lerp_pass(a: np.ndarray, ax: int, i0: np.ndarray, i1: np.ndarray, w0: np.ndarray,
              w1: np.ndarray, cdtype: np.dtype) -> np.ndarray | None:
    """One linear-interpolation pass along ``ax``, compiled and without the GIL.

    ``out[..., k, ...] = a[..., i0[k], ...] * w0[k] + a[..., i1[k], ...] * w1[k]`` in
    ``cdtype``, each element with numpy's own operations (the source converted to the
    working type, two products, one sum; no FMA contraction), so the result equals
    ``ndinterp._cpu._pass_cpu``'s numpy loop bit for bit. Returns ``None`` where not covered.
    """
    cdtype = np.dtype(cdtype)
    if (not available() or a.dtype not in _LERP_SRC or cdtype not in _LERP_SRC[-2:]
            or a.size == 0 or i0.size == 0 or (cdtype.itemsize < a.dtype.itemsize
                                               and a.dtype.kind == "f")):
        return None
    if cdtype == np.float32 and a.dtype != np.float32:
        return None  # numpy would round integers to float32 first: leave that to numpy
    ax = ax % a.ndim
    n = a.shape[ax]
    lead = int(np.prod(a.shape[:ax], dtype=np.int64))
    trail = int(np.prod(a.shape[ax + 1:], dtype=np.int64))
    shape = list(a.shape)
    shape[ax] = i0.size
    out = np.empty(shape, dtype=cdtype)
    i0 = np.ascontiguousarray(i0, dtype=np.int64)
    i1 = np.ascontiguousarray(i1, dtype=np.int64)
    w0 = np.ascontiguousarray(w0, dtype=cdtype)
    w1 = np.ascontiguousarray(w1, dtype=cdtype)
    if a.ndim == 3 and ax == 1:
        src3 = a  # any strides: numba reads the view in place
    else:
        src3 = np.ascontiguousarray(a).reshape(lead, n, trail)
    if trail == 1:
        _lerp_inner(src3.reshape(lead, n), i0, i1, w0, w1, out.reshape(lead, i0.size))
    else:
        _lerp_outer(src3, i0, i1, w0, w1, out.reshape(lead, i0.size, trail))
    return out


def round_to_int(res: np.ndarray, dtype: np.dtype, tol: float, want_ties: bool
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Float ``res`` rounded half away from zero and clipped to integer ``dtype``, compiled.

    Returns ``(out, ties)``: ``ties`` are the flat positions within ``tol`` of a rounding
    tie (empty unless ``want_ties``). ``None`` where not covered (dtype, NaN present).
    """
    dtype = np.dtype(dtype)
    if (not available() or dtype not in _ROUND_DST or res.dtype.kind != "f"
            or res.dtype.itemsize not in (4, 8)):
        return None
    info = np.iinfo(dtype)
    out = np.empty(res.shape, dtype=dtype)
    ties, nan = _round_flat(np.ascontiguousarray(res).reshape(-1), out.reshape(-1),
                            float(info.min), float(info.max), dtype.kind == "i", float(tol),
                            bool(want_ties))
    if nan:
        return None
    return out, ties


# --------------------------------------------------------------------------- entry points
_PARALLEL_BYTES = 4 << 20  # smaller passes run in the calling thread


def _split(n: int, nbytes: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into one contiguous range per core when the pass is large enough to
    be worth the pool (each range is computed independently, so results are unchanged)."""
    k = min(n, cores()) if nbytes >= _PARALLEL_BYTES else 1
    bounds = [n * i // k for i in range(k + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def correlate1d_kept(x: np.ndarray, weights: np.ndarray, axis: int, mode: str, cval: float,
                     keep: slice) -> np.ndarray | None:
    """``scipy.ndimage.correlate1d(x, weights, axis, mode=mode, cval=cval)`` on rows ``keep``.

    Only the rows ``keep`` of ``axis`` are computed (the other axes in full); the result has
    ``x``'s dtype and is bit-identical to scipy's. Returns ``None`` when the compiled path
    does not cover the case (disabled, dtype, mode, or an integer result scipy would leave to
    the platform's conversion rules): the caller then runs scipy.
    """
    if (not available() or x.dtype not in _DTYPES or mode not in _MODES or x.ndim == 0
            or x.size == 0):
        return None
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        return None
    is_int = x.dtype.kind == "u"
    if is_int and bool(np.any(w < 0)):
        return None  # negative results: C leaves their conversion to the platform
    axis = axis % x.ndim
    n = x.shape[axis]
    lo, hi, step = keep.indices(n)
    if step != 1 or hi <= lo or n == 0:
        return None
    lim = float(np.iinfo(x.dtype).max) + 1.0 if is_int else np.inf
    sym = _symmetry(w)
    size1 = w.size // 2
    size2 = w.size - size1 - 1
    src = np.ascontiguousarray(x)
    out_shape = list(x.shape)
    out_shape[axis] = hi - lo
    out = np.empty(out_shape, dtype=x.dtype)
    cv = float(cval)
    if axis == x.ndim - 1:
        pos = np.arange(lo - size1, hi + size2)
        ext = _source_index(pos, n, mode)
        s2, o2 = src.reshape(-1, n), out.reshape(-1, hi - lo)
        parts = _split(s2.shape[0], out.nbytes)
        bad = any(pmap(lambda r: _pass_inner(s2[r[0]:r[1]], w, sym, lo, ext, cv,
                                             o2[r[0]:r[1]], lim, is_int), parts))
    else:
        lead = int(np.prod(x.shape[:axis], dtype=np.int64))
        trail = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
        table = _source_index(np.arange(lo, hi)[:, None] + np.arange(-size1, size2 + 1),
                              n, mode)
        s3, o3 = src.reshape(lead, n, trail), out.reshape(lead, hi - lo, trail)
        if lead >= 2 * cores():  # whole leading rows per thread
            parts = _split(lead, out.nbytes)
            bad = any(pmap(lambda r: _pass_outer(s3[r[0]:r[1]], w, sym, table, cv,
                                                 o3[r[0]:r[1]], lim, is_int), parts))
        else:  # few leading rows: split the kept rows (contiguous while lead is 1)
            parts = _split(hi - lo, out.nbytes) if lead == 1 else [(0, hi - lo)]
            bad = any(pmap(lambda r: _pass_outer(s3, w, sym, table[r[0]:r[1]], cv,
                                                 o3[:, r[0]:r[1]], lim, is_int), parts))
    return None if bad else out


def gaussian1d_kept(x: np.ndarray, sigma: float, axis: int, order: int, mode: str,
                    cval: float, truncate: float, radius: int | None, keep: slice
                    ) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter1d`` on ``x`` restricted to rows ``keep`` of ``axis``.

    Compiled where covered, else scipy on the whole axis then cropped; bit-identical either
    way.
    """
    out = None
    if available():
        out = correlate1d_kept(x, gaussian_weights(sigma, order, truncate, radius), axis,
                               mode, cval, keep)
    if out is None:
        out = _scipy_gaussian1d(x, sigma, axis, order, mode, cval, truncate, radius)
        out = out[(slice(None),) * (axis % x.ndim) + (keep,)]
    return out


def _scipy_gaussian1d(x: np.ndarray, sigma: float, axis: int, order: int, mode: str,
                      cval: float, truncate: float, radius: int | None) -> np.ndarray:
    """The fallback: scipy's own pass over the whole axis."""
    kw: dict[str, Any] = {} if radius is None else {"radius": radius}
    return sndi.gaussian_filter1d(x, sigma, axis, order, mode=mode, cval=cval,
                                  truncate=truncate, **kw)
