"""Matrices: scipy's accepted forms, rotations, and coordinates rounded as scipy rounds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import special

from ..errors import GeometryError, InterpolationArgumentError


def normalize_matrix(matrix: Any, offset: Any, ndim: int,
                     out_ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(M, offset)`` as a ``(ndim, out_ndim)`` matrix and ``(ndim,)`` vector.

    Accepts what scipy accepts: a diagonal ``(ndim,)``, a linear ``(ndim, out_ndim)`` (with
    ``offset``; ``out_ndim`` is the output rank, by default ``ndim``), or homogeneous
    ``(ndim, ndim + 1)`` / ``(ndim + 1, ndim + 1)`` matrices whose last column is the offset
    (``offset`` is then ignored). Shape errors are :class:`InterpolationArgumentError` (scipy raises
    ``RuntimeError``), a bad homogeneous row a :class:`GeometryError` (``ValueError``).
    """
    out_ndim = ndim if out_ndim is None else int(out_ndim)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim not in (1, 2) or m.shape[0] < 1:
        raise InterpolationArgumentError(f"no proper affine matrix provided (shape {m.shape})",
                                         field="matrix")
    lin, off = m, offset
    if m.ndim == 2 and m.shape[1] == ndim + 1 and m.shape[0] in (ndim, ndim + 1):
        if m.shape[0] == ndim + 1:
            expect = np.zeros(ndim + 1)
            expect[-1] = 1.0
            if not np.array_equal(m[-1], expect):
                raise GeometryError(f"last row of a homogeneous matrix must be {expect.tolist()}"
                                    f", got {m[-1].tolist()}", field="matrix")
        lin, off = m[:ndim, :ndim], m[:ndim, ndim]
    if lin.shape[0] != ndim:
        raise InterpolationArgumentError(
            f"matrix of shape {m.shape} does not fit a {ndim}-D image; expected ({ndim},), "
            f"({ndim}, {out_ndim}), ({ndim}, {ndim + 1}) or ({ndim + 1}, {ndim + 1})",
            field="matrix")
    field = "matrix" if out_ndim == ndim else "output_shape"
    if lin.ndim == 1:
        if out_ndim != ndim:
            raise InterpolationArgumentError(
                f"a diagonal matrix needs an output of rank {ndim}, got {out_ndim}", field=field)
        lin = np.diag(lin)
    elif lin.shape[1] != out_ndim:
        raise InterpolationArgumentError(
            f"affine matrix has {lin.shape[1]} columns for an output of rank {out_ndim}",
            field=field)
    if np.ndim(off) == 0:
        off = np.full(ndim, float(np.asarray(off, dtype=np.float64)))
    off = np.asarray(off, dtype=np.float64)
    if off.shape != (ndim,):
        raise InterpolationArgumentError(f"offset needs {ndim} values, got shape {off.shape}",
                                         field="offset")
    lin = np.ascontiguousarray(lin, dtype=np.float64)
    if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(off))):
        raise GeometryError("matrix and offset must be finite", field="matrix")
    return lin, off


def _is_diagonal(m: np.ndarray) -> bool:
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        return False
    return bool(np.count_nonzero(m - np.diag(np.diagonal(m))) == 0)


def _check_planes(planes: Sequence[int] | None, m: np.ndarray, off: np.ndarray,
                  in_shape: Sequence[int], out_shape: Sequence[int], order: int
                  ) -> tuple[int, ...] | None:
    """Validated ``planes`` (sorted), or ``None`` where they change nothing (orders 0-1
    sample pass-through axes at integers with weights exactly 1 and 0)."""
    if planes is None:
        return None
    nd = len(in_shape)
    pl = tuple(sorted(int(a) % nd for a in planes)) if nd else ()
    if len(pl) != 2 or pl[0] == pl[1]:
        raise GeometryError(f"planes must name two different axes, got {planes!r}",
                            field="planes")
    rest = [a for a in range(nd) if a not in pl]
    if len(out_shape) != nd or any(
            not np.array_equal(m[a], np.eye(nd)[a]) or not np.array_equal(m[:, a], np.eye(nd)[a])
            or off[a] != 0 or in_shape[a] != out_shape[a] for a in rest):
        raise GeometryError("planes: the matrix must be the identity, the offset zero and "
                            f"the shape unchanged on the other axes {rest}", field="planes")
    return pl if order > 1 and rest else None


def rotation_matrix(angle: float, axes: Sequence[int], shape: Sequence[int],
                    reshape: bool) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """scipy's rotation about the array centre as ``(matrix, offset, output_shape)``."""
    ndim = len(shape)
    ax = [int(a) for a in axes]
    if len(ax) != 2:
        raise GeometryError("axes must name exactly two axes", field="axes")
    ax = [a + ndim if a < 0 else a for a in ax]
    if any(not 0 <= a < ndim for a in ax) or ax[0] == ax[1]:
        raise GeometryError(f"invalid rotation plane {tuple(axes)} for {ndim} dims",
                            field="axes")
    ax.sort()
    c, s = special.cosdg(angle), special.sindg(angle)
    rot = np.array([[c, s], [-s, c]])
    in_plane = np.asarray(shape)[ax]
    if reshape:
        iy, ix = in_plane
        bounds = rot @ np.array([[0, 0, iy, iy], [0, ix, 0, ix]], dtype=np.float64)
        out_plane = (np.ptp(bounds, axis=1) + 0.5).astype(int)
    else:
        out_plane = in_plane
    plane_offset = (in_plane - 1) / 2 - rot @ ((out_plane - 1) / 2)
    matrix = np.eye(ndim)
    matrix[np.ix_(ax, ax)] = rot
    offset = np.zeros(ndim)
    offset[ax] = plane_offset
    out_shape = list(shape)
    out_shape[ax[0]], out_shape[ax[1]] = int(out_plane[0]), int(out_plane[1])
    return matrix, offset, tuple(out_shape)


def _global_coords(xp: Any, matrix: np.ndarray, offset: np.ndarray,
                   start: Sequence[int], shape: Sequence[int], shift_first: bool = False) -> Any:
    """Input coordinates of one output chunk, rounded exactly as scipy rounds them.

    scipy starts from the offset and adds ``o_l * M[h, l]`` left to right, with the *global*
    output index ``o``. Doing the same keeps order-0 ties and points on the image edge on
    the same side as in the whole-array result. ``shift_first`` follows scipy's path for a
    1-D (diagonal) matrix instead, which computes ``(o + offset / m) * m``.
    """
    ndim = len(shape)
    grids = []
    for ax, (s0, k) in enumerate(zip(start, shape, strict=True)):
        g = xp.arange(s0, s0 + k, dtype=np.float64)
        grids.append(g.reshape((1,) * ax + (k,) + (1,) * (ndim - ax - 1)))
    out = xp.empty((matrix.shape[0], *shape), dtype=np.float64)
    for h in range(matrix.shape[0]):
        if shift_first and matrix[h, h] != 0:
            m = float(matrix[h, h])
            out[h] = (grids[h] + float(offset[h]) / m) * m
            continue
        acc = float(offset[h])
        for ax in range(ndim):
            acc = acc + grids[ax] * float(matrix[h, ax])
        out[h] = acc
    return out
