"""Pictures people check their data with: orthogonal projections and PNG export.

Both work on images of any size: projections are dask reductions over one axis (computed
chunk by chunk, the three views in one pass over the data), and PNGs are written one slab of
planes at a time. Geometry comes from the coordinates, so every picture is drawn at true
physical aspect.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ._progress import progress as show_progress
from ._progress import progress_keyword
from .coords import SPATIAL, Geometry, geometry
from .errors import ArgumentError, GeometryError, OverwriteError

__all__ = [
    "halo_depth_figure",
    "map_figure",
    "nice_length",
    "projections",
    "seam_figure",
    "series_map_figure",
    "series_traces_figure",
    "to_pngs",
    "traces_figure",
    "unit_symbol",
]

#: reductions allowed for projections (names of xarray reduction methods)
REDUCTIONS = ("max", "min", "mean")

#: channel colours when the image's ``omero`` metadata gives none (magenta-green first:
#: readable for colour-blind viewers)
DEFAULT_COLOURS = ("#ff00ff", "#00ff00", "#00ffff", "#ffff00", "#ff0000", "#0000ff", "#ffffff")

_SYMBOLS = {
    "micrometer": "µm", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm",
    "meter": "m", "picometer": "pm", "angstrom": "Å", "second": "s", "millisecond": "ms",
    "microsecond": "µs", "nanosecond": "ns", "minute": "min", "hour": "h", "day": "d",
}

# Memory for one slab of planes read at once by to_pngs.
_SLAB_BYTES = 256 << 20


# --------------------------------------------------------------------------- small helpers
def unit_symbol(unit: str | None) -> str:
    """Short symbol for a UDUNITS name (``"micrometer"`` -> ``"µm"``); ``"px"`` for none."""
    if unit is None:
        return "px"
    return _SYMBOLS.get(unit, unit)


def nice_length(span: float, fraction: float = 0.2) -> float:
    """A round length (1, 2 or 5 times a power of ten) close to ``fraction * span``."""
    target = span * fraction
    if not target > 0:
        raise GeometryError(f"cannot choose a scale bar for a span of {span!r}",
                            field="scale_bar")
    power = 10.0 ** math.floor(math.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target:
            return float(f"{step * power:.12g}")
    return power  # pragma: no cover - step 1 always fits


def _edges(geo: Geometry, dim: str) -> tuple[float, float]:
    """Physical lower and upper voxel edges along ``dim`` (pixel index when no coordinate)."""
    s = geo.scale.get(dim, 1.0)
    t0 = geo.translation.get(dim, 0.0)
    n = geo.size(dim)
    return t0 - s / 2, t0 + (n - 0.5) * s


def _label(geo: Geometry, dim: str) -> str:
    """Axis label with the unit symbol: ``"x (µm)"``; ``"x (px)"`` for space without a unit.

    Time is never in pixels: ``"t (s)"`` with a unit, ``"t"`` for a coordinate without one,
    ``"t (frame)"`` when the axis has no coordinate (values are frame indices).
    """
    if dim == "t":
        if dim not in geo.scale:
            return "t (frame)"
        unit = geo.units.get(dim)
        return f"t ({unit_symbol(unit)})" if unit else "t"
    return f"{dim} ({unit_symbol(geo.units.get(dim) if dim in geo.scale else None)})"


def _reduce(obj: xr.DataArray, how: str, dim: str) -> xr.DataArray:
    if how not in REDUCTIONS:
        raise ArgumentError(f"unknown reduction {how!r}; choose one of {REDUCTIONS}",
                            field="reduce")
    return getattr(obj, how)(dim=dim, keep_attrs=True)


def _select_time(img: xr.DataArray, t: int | str) -> xr.DataArray:
    """Index ``t`` (an int) or reduce over time (``"max"``, ``"mean"``, ``"min"``)."""
    if "t" not in img.dims:
        return img
    if isinstance(t, str):
        return _reduce(img, t, "t")
    n = img.sizes["t"]
    if not -n <= t < n:
        raise ArgumentError(f"time index {t} out of range for {n} timepoints", field="t")
    return img.isel(t=t)


def _channel_names(img: xr.DataArray) -> list[str]:
    if "c" not in img.dims:
        return []
    if "c" in img.coords:
        return [str(v) for v in np.asarray(img.coords["c"].values).tolist()]
    return [str(i) for i in range(img.sizes["c"])]


def _channel_colours(img: xr.DataArray, colors: Sequence[Any] | None) -> list[tuple[float, ...]]:
    """RGB per channel: ``colors`` if given, else ``omero`` colours, else the default list."""
    n = img.sizes.get("c", 1)
    if colors is not None:
        if len(colors) < n:
            raise ArgumentError(f"{len(colors)} colours for {n} channels", field="colors")
        return [to_rgb(c) for c in colors[:n]]
    omero = img.attrs.get("omero")
    chans = omero.get("channels") if isinstance(omero, Mapping) else None
    if isinstance(chans, list) and len(chans) == n:
        try:
            found = [to_rgb("#" + str(ch["color"]).lstrip("#")) for ch in chans]
        except (KeyError, TypeError, ValueError):
            found = []
        if len(set(found)) == n:  # distinct colours only; else fall back
            return found
    return [to_rgb(DEFAULT_COLOURS[i % len(DEFAULT_COLOURS)]) for i in range(n)]


def _per_channel(value: float | Sequence[float] | None, n: int, what: str) -> list[float | None]:
    if value is None or isinstance(value, int | float | np.number):
        return [None if value is None else float(value)] * n
    values = [float(v) for v in value]
    if len(values) != n:
        raise ArgumentError(f"{len(values)} values for {n} channels", field=what)
    return values


def _normalize(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``[lo, hi]`` to ``[0, 1]`` (clipped); a flat range maps to 0."""
    a = np.asarray(a, dtype=np.float64)
    if hi <= lo:
        return np.zeros(a.shape)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def _composite(planes: np.ndarray, lows: Sequence[float], highs: Sequence[float],
               colours: Sequence[tuple[float, ...]]) -> np.ndarray:
    """Additive RGB composite of ``planes`` (c, rows, cols) -> (rows, cols, 3) in [0, 1]."""
    rgb = np.zeros((*planes.shape[1:], 3))
    for plane, lo, hi, col in zip(planes, lows, highs, colours, strict=True):
        rgb += _normalize(plane, lo, hi)[..., None] * np.asarray(col)
    return np.clip(rgb, 0.0, 1.0)


def _compute(*arrays: xr.DataArray) -> list[np.ndarray]:
    """Values of several (lazy) arrays in one dask pass, so shared chunks are read once."""
    return [np.asarray(v) for v in dask.compute(*(a.data for a in arrays))]


# --------------------------------------------------------------------------- projections
def projections(
    img: xr.DataArray,
    *,
    reduce: str = "max",
    t: int | str = 0,
    colors: Sequence[Any] | None = None,
    cmap: str = "gray",
    vmin: float | Sequence[float] | None = None,
    vmax: float | Sequence[float] | None = None,
    scale_bar: bool = True,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    max_size: int = 2048,
    min_panel: float = 0.15,
) -> Figure:
    """XY, XZ and ZY projections drawn at true physical aspect (a matplotlib Figure).

    The three views are laid out as orthogonal views: XY top left, ZY to its right (z
    running rightwards, sharing the y axis), XZ below it (z running downwards, sharing the x
    axis). Panel sizes follow the physical extents, every panel has ``aspect="equal"`` and
    ``imshow`` extents from the coordinates (voxel edges), so an anisotropic stack looks as the
    specimen is. A 2-D image (or a stack of one plane) gives one panel.

    Parameters
    ----------
    img
        Image with dims from ``t, c, z, y, x``; numpy- or dask-backed. The projections are
        dask reductions, computed chunk by chunk in one pass (the whole volume is never
        loaded at once).
    reduce
        ``"max"`` (default), ``"mean"`` or ``"min"`` along the projected axis.
    t
        Time axis handling: a timepoint index (default ``0``, the first timepoint) or a
        reduction over time (``"max"``, ``"mean"``, ``"min"``).
    colors
        One matplotlib colour per channel for multichannel images (composited additively);
        default the ``omero`` channel colours, else magenta, green, cyan, yellow, ...
        Channel names (the ``c`` coordinate) appear in a legend.
    cmap
        Colour map for single-channel images.
    vmin, vmax
        Display range (one value, or one per channel); default the minimum and maximum of
        the projections, shared by the three views.
    scale_bar
        Draw a scale bar in physical units on the XY view.
    ax
        Draw into existing axes: one Axes for a 2-D image, or a sequence ``(xy, xz, zy)``.
    figsize
        Figure size in inches; default from the physical extents.
    title
        Figure title; default ``"<name>: <reduce> projections"`` (just the name for a
        single view).
    max_size
        Longest side, in pixels, of a drawn view. Longer axes are binned for display by
        ``ceil(n / max_size)`` with the same reduction (a trailing partial bin is dropped),
        so even huge images give a small figure; physical extents stay true.
    min_panel
        Smallest drawn length of an axis, as a fraction of the longest physical extent. A
        thinner axis (the z of a 5-plane stack at 1 µm beside 100 µm in x and y) is drawn
        stretched by the smallest integer factor N that reaches it, so its panels do not
        shrink to slivers; every panel showing it says so in its label (``"XZ  z ×4"``).
        ``0`` always draws true physical aspect. Tick labels are thinned where they would
        touch.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if reduce not in REDUCTIONS:
        raise ArgumentError(f"unknown reduction {reduce!r}; choose one of {REDUCTIONS}",
                            field="reduce")
    img = _select_time(img, t)
    if "z" in img.dims and img.sizes["z"] == 1 and img.ndim > 2:
        img = img.isel(z=0)  # a single plane: draw it as the 2-D image it is
    spatial = [d for d in img.dims if d in SPATIAL]
    # axes without a coordinate are drawn in pixel units
    img = img.assign_coords({d: np.arange(img.sizes[d], dtype=np.float64)
                             for d in spatial if d not in img.coords})
    full = geometry(img)
    if len(spatial) < 2:
        raise GeometryError(f"projections need 2 or 3 spatial axes, got {spatial}",
                            field="dims")
    # views: (name, row dim, col dim, projected dim)
    if len(spatial) == 3:
        views = [("XY", "y", "x", "z"), ("XZ", "z", "x", "y"), ("ZY", "y", "z", "x")]
    else:
        views = [("".join(spatial[::-1]).upper(), spatial[0], spatial[1], None)]
    # huge planes are binned for display with the same reduction, by one factor per axis
    # so that views sharing an axis stay aligned
    factor = {d: max(1, math.ceil(img.sizes[d] / max_size)) for d in spatial}
    lazy = []
    for _, row, col, proj in views:
        v = img if proj is None else _reduce(img, reduce, proj)
        bins = {d: factor[d] for d in (row, col) if factor[d] > 1}
        if bins:
            v = getattr(v.coarsen(bins, boundary="trim"), reduce)(keep_attrs=True)
        lazy.append(v.transpose(*(["c"] if "c" in v.dims else []), row, col))
    geo = geometry(lazy[0]) if len(views) == 1 else _merge_geometry(lazy)
    planes = _compute(*lazy)
    if "c" not in img.dims:
        planes = [p[None] for p in planes]
    n_ch = planes[0].shape[0]
    lows = _per_channel(vmin, n_ch, "vmin")
    highs = _per_channel(vmax, n_ch, "vmax")
    lows = [float(min(np.nanmin(p[i]) for p in planes)) if lo is None else lo
            for i, lo in enumerate(lows)]
    highs = [float(max(np.nanmax(p[i]) for p in planes)) if hi is None else hi
             for i, hi in enumerate(highs)]
    names = _channel_names(img)
    colours = _channel_colours(img, colors) if n_ch > 1 else []

    stretch = _stretch(geo, views, min_panel)
    fig, axes, spare = _layout(geo, views, ax, figsize, stretch)
    for (vname, row, col, _), plane, axis in zip(views, planes, axes, strict=True):
        c_lo, c_hi = _edges(geo, col)
        r_lo, r_hi = _edges(geo, row)
        extent = (c_lo, c_hi, r_hi, r_lo)  # row 0 at the top, at the lower coordinate
        # aspect = drawn height of one row unit / drawn width of one column unit
        aspect = stretch[row] / stretch[col]
        if n_ch > 1:
            axis.imshow(_composite(plane, lows, highs, colours), extent=extent,
                        origin="upper", aspect=aspect, interpolation="nearest")
        else:
            axis.imshow(plane[0], extent=extent, origin="upper", aspect=aspect, cmap=cmap,
                        vmin=lows[0], vmax=highs[0], interpolation="nearest")
        axis.set_xlabel(_label(geo, col))
        axis.set_ylabel(_label(geo, row))
        # a stretched axis is always said, so the drawn aspect is never silently wrong
        note = "  ".join(f"{d} ×{stretch[d]}" for d in (row, col) if stretch[d] > 1)
        if len(views) > 1 or note:
            # orthogonal views also list it in the free corner; a single view says it here
            text = (f"{vname}  {note}".rstrip() if len(views) > 1
                    else note.replace(" ×", " stretched ×"))
            label = axis.text(0.02, 0.98, text, transform=axis.transAxes, ha="left",
                              va="top", color="white", fontsize=9, fontweight="bold",
                              bbox={"facecolor": "black", "alpha": 0.5, "pad": 1.5, "lw": 0})
            label.set_gid(f"view:{vname}")
    if ax is None and len(views) == 3:
        xy, xz, zy = axes
        xy.xaxis.set_label_position("top")
        xy.xaxis.tick_top()
        zy.yaxis.set_label_position("right")
        zy.yaxis.tick_right()
    if scale_bar:
        _scale_bar(axes[0], geo, views[0][2], views[0][1], stretch[views[0][1]] /
                   stretch[views[0][2]])
    if spare is not None:  # the free corner of the orthogonal views: what was drawn
        lines = [" x ".join(str(full.size(d)) for d in spatial) + " voxels", "voxel size",
                 *(f"  {d}  {full.scale[d]:.4g} {unit_symbol(full.units.get(d))}"
                   for d in spatial)]
        lines += [f"{d} drawn stretched ×{stretch[d]}" for d in spatial if stretch[d] > 1]
        spare.text(0.08, 0.92, "\n".join(lines), transform=spare.transAxes, ha="left",
                   va="top", fontsize=9, family="monospace")
    if n_ch > 1:
        handles = [Patch(facecolor=c, edgecolor="none", label=n)
                   for c, n in zip(colours, names, strict=True)]
        where = spare if spare is not None else axes[0]
        where.legend(handles=handles, title="channels", loc="lower left" if spare else "best",
                     fontsize=8, title_fontsize=8, frameon=spare is None)
    if ax is None:
        name = str(img.name or "image")
        if title is None:  # a single view is the image itself, not a projection
            title = f"{name}: {reduce} projections" if len(views) > 1 else name
        fig.suptitle(title)
    _thin_ticks(fig, axes)
    return fig


def _stretch(geo: Geometry, views: list[tuple[str, str, str, str | None]],
             min_panel: float) -> dict[str, int]:
    """Integer factor by which each drawn axis is stretched (1: true physical length).

    An axis whose physical extent is below ``min_panel`` times the longest one is drawn N
    times longer, N the smallest integer that reaches it.
    """
    if not min_panel >= 0:
        raise ArgumentError(f"min_panel must be >= 0, got {min_panel!r}", field="min_panel")
    dims = {d for _, row, col, _ in views for d in (row, col)}
    ext = {d: _edges(geo, d)[1] - _edges(geo, d)[0] for d in dims}
    want = min_panel * max(ext.values())
    # the small slack keeps an axis exactly at the limit (or a hair below) unstretched
    return {d: max(1, math.ceil(want / ext[d] - 1e-9)) for d in dims}


def _tick_labels(axis: Any) -> list[Any]:
    """The drawn tick labels of an x or y ``axis`` (ticks inside the view, with text)."""
    lo, hi = sorted(axis.get_view_interval())
    slack = (hi - lo) * 1e-9
    return [lab for tick in axis.get_major_ticks() if lo - slack <= tick.get_loc() <= hi + slack
            for lab in (tick.label1, tick.label2) if lab.get_visible() and lab.get_text()]


def _thin_ticks(fig: Figure, axes: Sequence[Any], gap: float = 4.0) -> None:
    """Fewer ticks on any axis whose tick labels would touch (``gap`` pixels apart at
    least): the short sides of thin panels, long tick labels.

    Needs a canvas that can measure text (Agg, which voxzarr's own figures get); others are
    left as they are.
    """
    from matplotlib.ticker import FixedLocator, MaxNLocator

    if not hasattr(fig.canvas, "get_renderer"):
        return
    for _ in range(5):  # each pass can only remove ticks, so this settles fast
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        crowded = []
        for ax in axes:
            for axis in (ax.xaxis, ax.yaxis):
                along = 0 if axis.axis_name == "x" else 1
                boxes = sorted(([b.x0, b.x1], [b.y0, b.y1])[along]
                               for b in (t.get_window_extent(renderer)
                                         for t in _tick_labels(axis)))
                if any(a[1] + gap > b[0] for a, b in zip(boxes, boxes[1:], strict=False)):
                    size = max(b[1] - b[0] for b in boxes) + gap
                    span = ax.get_window_extent(renderer)
                    length = span.width if along == 0 else span.height
                    crowded.append((axis, min(len(boxes) - 1, int(length // size))))
        if not crowded:
            return
        for axis, fits in crowded:
            if fits >= 2:  # at most `fits` labels, at round steps
                axis.set_major_locator(MaxNLocator(nbins=fits - 1, steps=[1, 2, 2.5, 5, 10]))
            else:  # not even two fit: keep the visible tick nearest the middle
                lo, hi = sorted(axis.get_view_interval())
                locs = [t.get_loc() for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi]
                mid = min(locs, key=lambda v: abs(v - (lo + hi) / 2)) if locs else lo
                axis.set_major_locator(FixedLocator([mid]))


def _merge_geometry(views: Sequence[xr.DataArray]) -> Geometry:
    """One Geometry for z, y, x from the (possibly binned) XY and XZ views."""
    xy, xz = geometry(views[0]), geometry(views[1])
    dims = ("z", "y", "x")
    src = {"z": xz, "y": xy, "x": xy}
    return Geometry(
        dims, tuple(src[d].size(d) for d in dims),
        {d: src[d].scale[d] for d in dims if d in src[d].scale},
        {d: src[d].translation[d] for d in dims if d in src[d].translation},
        {d: src[d].units.get(d) for d in dims if d in src[d].scale},
    )


def _layout(geo: Geometry, views: list[tuple[str, str, str, str | None]], ax: Any,
            figsize: tuple[float, float] | None,
            stretch: Mapping[str, int]) -> tuple[Figure, list[Any], Any]:
    """Figure and axes for the views: orthogonal-view grid sized by the drawn extents
    (physical extents times ``stretch``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if ax is not None:
        axes = [ax] if len(views) == 1 and not isinstance(ax, Sequence | np.ndarray) else list(
            np.ravel(ax))
        if len(axes) != len(views):
            raise ArgumentError(f"ax must hold {len(views)} Axes for this image, got "
                                f"{len(axes)}", field="ax")
        return axes[0].figure, axes, None
    ext = {d: (_edges(geo, d)[1] - _edges(geo, d)[0]) * stretch[d] for d in stretch}
    if len(views) == 1:
        w, h = ext[views[0][2]], ext[views[0][1]]
        size = figsize or _fit(w, h, 6.0, extra=(1.2, 1.0))
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)  # measures text, so crowded tick labels can be thinned
        return fig, [fig.add_subplot()], None
    w, h = ext["x"] + ext["z"], ext["y"] + ext["z"]
    size = figsize or _fit(w, h, 7.0, extra=(1.8, 1.8))
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, width_ratios=[ext["x"], ext["z"]],
                            height_ratios=[ext["y"], ext["z"]])
    xy = fig.add_subplot(grid[0, 0])
    zy = fig.add_subplot(grid[0, 1], sharey=xy)
    xz = fig.add_subplot(grid[1, 0], sharex=xy)
    spare = fig.add_subplot(grid[1, 1])
    spare.axis("off")
    return fig, [xy, xz, zy], spare


def _fit(w: float, h: float, longest: float, extra: tuple[float, float]) -> tuple[float, float]:
    """Figure size whose image area keeps the aspect ``w:h`` with the longer side ``longest``."""
    k = longest / max(w, h)
    return (max(w * k, 2.0) + extra[0], max(h * k, 2.0) + extra[1])


def _scale_bar(axis: Any, geo: Geometry, col: str, row: str, stretch: float = 1.0) -> None:
    """A white bar of a round physical length in the lower right corner of ``axis``.

    The bar and its label sit on a semi-transparent black box and the label has a black
    outline, so they stay visible on white, black and mixed images alike. ``stretch`` is
    how much the row axis is drawn stretched (the bar's thickness is kept on screen).
    """
    from matplotlib.patheffects import withStroke
    from matplotlib.text import Text
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    lo, hi = _edges(geo, col)
    r_lo, r_hi = _edges(geo, row)
    length = nice_length(hi - lo)
    unit = unit_symbol(geo.units.get(col) if col in geo.scale else None)
    thick = max((r_hi - r_lo) * stretch, (hi - lo) * 0.25) / 80 / stretch
    bar = AnchoredSizeBar(axis.transData, length, f"{length:g} {unit}", loc="lower right",
                          color="white", frameon=True, pad=0.3, borderpad=0.6, sep=3,
                          size_vertical=thick, fontproperties={"size": 9})
    bar.patch.set(facecolor="black", edgecolor="none", alpha=0.55,
                  boxstyle="round,pad=0.2,rounding_size=0.3")
    for text in bar.txt_label.findobj(Text):
        text.set_path_effects([withStroke(linewidth=2.0, foreground="black")])
    bar.set_gid("scale_bar")
    axis.add_artist(bar)


# --------------------------------------------------------------------------- PNG export
def _square_pixels(plane: np.ndarray, sy: float, sx: float) -> np.ndarray:
    """Resample ``plane`` (rows, cols, ...) so both pixel spacings equal ``min(sy, sx)``.

    The coarser axis is upsampled by linear interpolation on a pixel-centre grid that starts
    at the plane's lower edge (output length ``n * s / min(sy, sx)`` rounded half up; values
    beyond the last centre repeat the edge voxel).
    """
    fine = min(sy, sx)
    for axis, s in ((0, sy), (1, sx)):
        if math.isclose(s, fine, rel_tol=1e-9):
            continue
        n = plane.shape[axis]
        # half up, with slack for spacings such as 0.15 / 0.1 = 1.5000000000000002
        n_out = max(1, math.floor(n * s / fine + 0.5 + 1e-9))
        pos = np.clip((np.arange(n_out) + 0.5) * fine / s - 0.5, 0, n - 1)
        i0 = np.minimum(np.floor(pos).astype(np.intp), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        w = pos - i0
        shape = [1] * plane.ndim
        shape[axis] = n_out
        w = w.reshape(shape)
        lo = np.take(plane, i0, axis=axis)
        plane = lo + (np.take(plane, i1, axis=axis) - lo) * w  # exact where neighbours agree
    return plane


def _encode(norm: np.ndarray, bits: int, cmap: str) -> np.ndarray:
    """Pixels for the PNG writer from values in [0, 1] (rows, cols) or RGB (rows, cols, 3)."""
    if norm.ndim == 3:  # multichannel composite
        return np.round(norm * 255).astype(np.uint8)
    if bits == 16:
        return np.round(norm * 65535).astype(np.uint16)
    if cmap in ("gray", "grey"):
        return np.round(norm * 255).astype(np.uint8)
    return colormaps[cmap](norm, bytes=True)[..., :3]


def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image  # a matplotlib dependency; writes 16-bit grayscale PNG too

    Image.fromarray(pixels).save(path, format="PNG")


@progress_keyword
def to_pngs(
    img: xr.DataArray,
    directory: str | os.PathLike[str],
    *,
    dim: str = "z",
    projection: str | None = None,
    vmin: float | Sequence[float] | None = None,
    vmax: float | Sequence[float] | None = None,
    cmap: str = "gray",
    bits: int = 8,
    colors: Sequence[Any] | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> list[Path]:
    """Write one PNG per plane (``dim="z"``) or per timepoint (``dim="t"``).

    Each PNG shows a ``y, x`` plane. Any other axis (``z`` for ``dim="t"``, ``t`` for
    ``dim="z"``) is reduced with ``projection`` (``"max"``, ``"mean"`` or ``"min"``), or must
    have length one. Files are named ``<dim><index>.png`` with zero-padded indices
    (``z0000.png``, ``z0001.png`` ...) so they sort in order.

    Intensities map linearly from ``[vmin, vmax]`` to the full output range (clipped); the
    default range is the minimum and maximum over the whole stack (one chunk-wise pass), so
    every file uses the same scale. ``bits=8`` writes 8-bit grayscale with ``cmap="gray"``,
    else RGB through the colour map; ``bits=16`` writes 16-bit grayscale (``cmap`` must be
    ``"gray"``). Multichannel images become additive RGB composites (8-bit only), coloured as
    in :func:`projections`.

    Physical aspect: when the ``y`` and ``x`` spacings differ, the coarser axis is upsampled
    by linear interpolation so every PNG pixel is square (length ``n * s / min(s)``, rounded
    half up).

    Data are read one slab of planes at a time (the stored chunk depth along ``dim``, capped
    at 256 MiB), so memory stays bounded.

    Parameters
    ----------
    img
        Image with dims from ``t, c, z, y, x`` including ``dim``, ``y`` and ``x``.
    directory
        Output folder, created if missing.
    overwrite
        Replace existing PNGs of the same names. Without it, any existing target file raises
        :class:`~voxzarr.errors.OverwriteError` before anything is written.
    progress
        Show a progress bar (default: when stderr is a terminal and not under CI).
        ``progress_bar=`` is its deprecated old name.

    Returns
    -------
    list of pathlib.Path
        The files written, in index order.
    """
    if dim not in ("z", "t"):
        raise ArgumentError(f"dim must be 'z' or 't', got {dim!r}", field="dim")
    if dim not in img.dims:
        raise GeometryError(f"the image has no {dim!r} axis (dims {tuple(img.dims)})",
                            field="dim")
    if bits not in (8, 16):
        raise ArgumentError(f"bits must be 8 or 16, got {bits!r}", field="bits")
    if bits == 16 and cmap not in ("gray", "grey"):
        raise ArgumentError("16-bit PNGs are grayscale; use cmap='gray' or bits=8",
                            field="cmap")
    if cmap not in ("gray", "grey") and cmap not in colormaps:
        raise ArgumentError(f"unknown colour map {cmap!r}", field="cmap")
    for d in ("y", "x"):
        if d not in img.dims:
            raise GeometryError(f"PNG planes need a {d!r} axis (dims {tuple(img.dims)})",
                                field="dims")
    stack = img
    for d in [d for d in img.dims if d not in (dim, "c", "y", "x")]:
        if projection is not None:
            stack = _reduce(stack, projection, d)
        elif stack.sizes[d] == 1:
            stack = stack.isel({d: 0})
        else:
            raise GeometryError(
                f"axis {d!r} has {stack.sizes[d]} entries; pass projection='max' (or 'mean') "
                f"or select one with img.isel({d}=...)", field="projection")
    if "c" in stack.dims and stack.sizes["c"] == 1:
        stack = stack.isel(c=0)
    multichannel = "c" in stack.dims
    if multichannel and bits == 16:
        raise ArgumentError("multichannel images become RGB composites: use bits=8",
                            field="bits")
    stack = stack.transpose(dim, *(["c"] if multichannel else []), "y", "x")
    geo = geometry(img)
    sy, sx = geo.scale.get("y", 1.0), geo.scale.get("x", 1.0)

    n = stack.sizes[dim]
    width = max(4, len(str(n - 1)))
    directory = Path(directory)
    paths = [directory / f"{dim}{i:0{width}d}.png" for i in range(n)]
    if not overwrite:
        existing = [p for p in paths if p.exists()]
        if existing:
            raise OverwriteError(f"{len(existing)} of the PNGs exist already; pass "
                                 "overwrite=True to replace them", path=existing[0])

    n_ch = stack.sizes["c"] if multichannel else 1
    lows = _per_channel(vmin, n_ch, "vmin")
    highs = _per_channel(vmax, n_ch, "vmax")
    if any(v is None for v in (*lows, *highs)):
        other = [d for d in stack.dims if d != "c"]
        lo_all, hi_all = _compute(stack.min(dim=other), stack.max(dim=other))
        lo_all, hi_all = np.atleast_1d(lo_all), np.atleast_1d(hi_all)
        lows = [float(lo_all[i]) if v is None else v for i, v in enumerate(lows)]
        highs = [float(hi_all[i]) if v is None else v for i, v in enumerate(highs)]
    colours = _channel_colours(stack, colors) if multichannel else []

    directory.mkdir(parents=True, exist_ok=True)
    step = _slab_depth(stack, dim)
    with show_progress(f"writing PNGs along {dim}", progress):
        for start in range(0, n, step):
            slab = np.asarray(stack.isel({dim: slice(start, start + step)}).values)
            for k, plane in enumerate(slab):
                if multichannel:
                    norm = _composite(plane, lows, highs, colours)
                else:
                    norm = _normalize(plane, lows[0], highs[0])
                norm = _square_pixels(norm, sy, sx)
                _write_png(paths[start + k], _encode(norm, bits, cmap))
    return paths


def _slab_depth(stack: xr.DataArray, dim: str) -> int:
    """Planes per read: the dask chunk depth along ``dim``, capped by memory."""
    plane_bytes = stack.dtype.itemsize * int(np.prod([stack.sizes[d] for d in stack.dims
                                                       if d != dim]))
    cap = max(1, _SLAB_BYTES // max(plane_bytes, 1))
    chunks = stack.chunksizes.get(dim) if stack.chunks is not None else None
    depth = int(chunks[0]) if chunks else stack.sizes[dim]
    return max(1, min(depth, cap))


def seam_figure(diffs: Mapping[int, np.ndarray], *, tile: Sequence[int],
                dims: Sequence[str], seam_free: int | None = None) -> Figure:
    """Draw a seam experiment: ``|tiled - untiled|`` for each halo depth.

    Parameters
    ----------
    diffs
        ``{depth: |tiled - untiled|}``, each an array over one region (as
        :meth:`voxzarr.halo.HaloDepthReport.seam_differences` gives).
    tile, dims
        The tile shape and the region's dims, for titles and axis labels.
    seam_free
        The smallest seam-free depth, marked on the curve (``None``: none found).

    One panel per depth shows the difference on the region's middle plane (seams show up as
    lines along tile borders), titled with the sum of the differences over the whole region;
    a last panel plots that sum against depth (log scale).
    """
    depths = sorted(diffs)
    if not depths:
        raise ArgumentError("no depth to draw", field="depths")
    sums = [float(diffs[d].sum()) for d in depths]
    first = diffs[depths[0]]
    # the middle plane of every leading axis: a 2-D view of the last two axes
    mid = tuple(n // 2 for n in first.shape[:-2])
    vmax = max(float(diffs[d][mid].max()) for d in depths) or 1.0
    n = len(depths) + 1
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, d, total in zip(axes, depths, sums, strict=False):
        ax.imshow(diffs[d][mid], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"depth {d}: sum |diff| = {total:.4g}", fontsize=9)
        ax.set_xlabel(f"{dims[-1]} (voxels)")
        ax.set_ylabel(f"{dims[-2]} (voxels)")
    ax = axes[len(depths)]
    ax.plot(depths, [max(v, 1e-12) for v in sums], marker="o")
    ax.set_yscale("log")
    ax.set_xlabel("halo depth (voxels)")
    ax.set_ylabel("sum |tiled - untiled|")
    if seam_free is not None:
        ax.axvline(seam_free, color="tab:green", linestyle="--",
                   label=f"seam-free at {seam_free}")
        ax.legend(fontsize=8)
    for extra in axes[len(depths) + 1:]:
        extra.set_axis_off()
    fig.suptitle(f"tiles {tuple(tile)}: |tiled - untiled| by halo depth")
    return fig


def halo_depth_figure(report: Any, img: xr.DataArray, fn: Any,
                      depths: Sequence[int] | None = None) -> Figure:
    """Deprecated: use ``report.figure(img, fn, depths)`` (this calls it)."""
    warnings.warn("voxzarr.plot.halo_depth_figure is deprecated; use "
                  "report.figure(img, fn, depths)", DeprecationWarning, stacklevel=2)
    return report.figure(img, fn, depths)


# --------------------------------------------------------------------------- series figures
def _position_label(ser: xr.DataArray, geo: Geometry, idx: Mapping[str, int]) -> str:
    """``"y=1.3 µm, x=2.6 µm"``: a voxel's position from the coordinates (pixels without)."""
    parts = []
    for d, i in idx.items():
        if d in ser.coords and d in geo.scale:
            val = float(ser.coords[d].values[i])
            parts.append(f"{d}={val:.4g} {unit_symbol(geo.units.get(d))}")
        else:
            parts.append(f"{d}={i} px")
    return ", ".join(parts)


def traces_figure(
    ser: xr.DataArray,
    voxels: Mapping[str, np.ndarray],
    values: np.ndarray,
    *,
    ylabel: str = "intensity",
    ax: Any = None,
    figsize: tuple[float, float] = (7.0, 4.0),
    title: str | None = None,
) -> Figure:
    """Draw time series of a few voxels against the ``t`` coordinate (a matplotlib Figure).

    Parameters
    ----------
    ser
        The image or series the traces come from: only its coordinates, units, channel
        labels and name are used (for the legend, the axis labels and the title), no data.
    voxels
        The drawn voxels' indices, one integer array per voxel dim.
    values
        Their series, shape ``(voxel, [c,] t)`` (``c`` when ``ser`` has a ``c`` axis).
    ylabel, ax, figsize, title
        Label of the y axis; draw into an existing Axes; figure size; title.

    The legend names each voxel by its physical position (one line per voxel and channel);
    the x axis is the ``t`` coordinate in its unit. ``ser.vox.series.plot`` chooses the
    voxels, reads and normalises the series, and calls this.
    """
    geo = geometry(ser)
    times = (np.asarray(ser.coords["t"].values, dtype=np.float64) if "t" in ser.coords
             else np.arange(ser.sizes["t"], dtype=np.float64))
    names = _channel_names(ser)
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for k in range(values.shape[0]):
        where = _position_label(ser, geo, {d: int(p[k]) for d, p in voxels.items()})
        rows = values[k] if names else values[k][None]
        for c, row in enumerate(rows):
            label = f"{where}, c={names[c]}" if names else where
            ax.plot(times, row, lw=1.0, label=label)
    ax.set_xlabel(_label(geo, "t"))
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="voxel", title_fontsize=8)
    if title is None:
        title = f"{ser.name or 'series'}: {values.shape[0]} voxels"
    ax.set_title(title)
    return fig


def map_figure(
    smap: xr.DataArray,
    label: str,
    *,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    reduce: str = "max",
    scale_bar: bool = True,
    ax: Any = None,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Draw a per-voxel map at true physical aspect with axis labels in units and a colour bar.

    Parameters
    ----------
    smap
        The map over the spatial axes, with its coordinates.
    label
        What the map shows: the colour bar's label (and the title without ``title``).
    reduce
        For 3-D maps: the projection drawn (``"max"``, ``"mean"``, ``"min"``) as
        orthogonal views (see :func:`projections`).
    cmap, vmin, vmax, scale_bar, ax, figsize, title
        As :func:`projections`.

    ``ser.vox.series.map_figure`` computes the map and calls this.
    """
    fig = projections(smap, reduce=reduce, cmap=cmap, vmin=vmin, vmax=vmax,
                      scale_bar=scale_bar, ax=ax, figsize=figsize,
                      title=title if title is not None else label)
    axes = [a for a in fig.axes if a.images]
    bar = fig.colorbar(axes[0].images[0], ax=axes, shrink=0.9)
    bar.set_label(label)
    _thin_ticks(fig, axes)  # the colour bar narrows the panels
    return fig


def series_traces_figure(ser: xr.DataArray, voxels: Any = None, n: int = 8,
                         normalize: str | None = None, **kwargs: Any) -> Figure:
    """Deprecated: use ``ser.vox.series.plot(voxels, n, normalize, ...)`` (this calls it)."""
    warnings.warn("voxzarr.plot.series_traces_figure is deprecated; use "
                  "ser.vox.series.plot(...)", DeprecationWarning, stacklevel=2)
    return ser.vox.series.plot(voxels, n, normalize, **kwargs)


def series_map_figure(ser: xr.DataArray, stat: Any = "mean", **kwargs: Any) -> Figure:
    """Deprecated: use ``ser.vox.series.map_figure(stat, ...)`` (this calls it)."""
    warnings.warn("voxzarr.plot.series_map_figure is deprecated; use "
                  "ser.vox.series.map_figure(...)", DeprecationWarning, stacklevel=2)
    return ser.vox.series.map_figure(stat, **kwargs)
