"""Multiscale pyramids that respect anisotropy and keep every level in place.

Three jobs, one module:

* **Planning** (:func:`plan_pyramid`): which axes each level halves. By default an axis is
  halved only while its spacing is more than a factor sqrt(2) finer than the coarsest spatial
  spacing, so levels approach isotropy first; then every spatial axis halves. An axis stops
  once halving it would take it under ``min_size`` voxels (default: one chunk), and the
  pyramid ends when no axis can be halved. ``t`` and ``c`` are never reduced.
* **Reducing** (:mod:`voxzarr._downsample`): block reduce by integer factors with ``mean``,
  ``gaussian``, ``nearest`` (alias ``stride``), ``mode``, ``min``, ``max`` or ``median``,
  on numpy or CuPy, or with any method added by :func:`register_pyramid_method` (or by
  another package through the entry-point group ``voxzarr.pyramid_methods``).
* **Placement**: level ``i`` with cumulative factor ``K`` has voxel size ``K * s0`` and, for
  every block method, first-voxel centre ``t0 + (K - 1) * s0 / 2`` (the centre of the first
  block). ``nearest`` keeps real voxels, so its origin is the centre of the voxel it kept.

:func:`build_pyramid` returns a lazy :class:`xarray.DataTree`; :func:`stream_levels` feeds
:func:`voxzarr.io.write_multiscale` in one fused pass: every block, once computed, is
encoded and also reduced into the next level in memory (never read back and decoded from
the store), in tasks of bounded size, so memory stays at a few blocks however large the
image; iterated instead, it yields each level computed from the level below *as written*.
:func:`add_levels` adds levels to an existing dataset without touching level 0. The
conventions are written down in ``spec/pyramid.md``.

Writing and chunk policy come from :mod:`voxzarr._write`, below this module and
:mod:`voxzarr.io`; a stream is handed over as a :class:`LevelStream`, the writer's typed
protocol. :func:`voxzarr.io.to_ome_zarr` finds :func:`stream_levels` by name
(``voxzarr._registry.LEVEL_STREAMS``), so io never imports this module.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.storage import StorePath

from . import _store, _write
from ._chunkwrite import chunk_target
from ._downsample import (
    LABEL_METHODS,
    METHODS,
    PyramidMethod,
    canonical_method,
    check_dtype,
    gaussian_radius,
    gaussian_reduce_block,
    nearest_offset,
    output_length,
    pyramid_method,
    reduce_block,
    register_pyramid_method,
)
from ._locate import canonical_dims, read_multiscale_metadata, resolve_image_group
from ._progress import progress as show_progress
from ._progress import progress_keyword
from ._views import dask_view
from ._write import IMAGE_VAR, storage_units, write_scheduler
from ._xp import array_module, resolve_device
from .coords import SPATIAL, combine_coords, geometry, make_coords
from .errors import MetadataError, OverwriteError, PyramidError, StoreError
from .io import open_image
from .ngff import Level, multiscales_attrs, ome_attrs

__all__ = [
    "METHODS",
    "LABEL_METHODS",
    "PyramidMethod",
    "register_pyramid_method",
    "PyramidError",  # defined in voxzarr.errors; still importable from here
    "PyramidPlan",
    "plan_pyramid",
    "build_pyramid",
    "stream_levels",
    "LevelStream",
    "ngff_metadata",
    "add_levels",
    "plan_for",
    "format_plan",
    "label_names",
    "parse_factors",
    "VIEW_FLOOR",
]

#: Largest default ``min_size``: an axis longer than a 512-pixel screen tile is halved at
#: least once even when it fits one chunk, as viewers expect a reduced level.
VIEW_FLOOR = 256

#: input bytes one task reads (the reduced output is 1/K of it); with the kernels'
#: temporaries a task peaks at a few times this
TARGET_BYTES = 16 << 20
_SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class PyramidPlan:
    """Shapes, factors and placement of every level (level 0 included).

    ``factors[i]`` is level ``i``'s factor per dim *relative to level i - 1* (all ones for
    level 0); ``scales[i]`` / ``translations[i]`` hold each physical axis (t included).
    """

    dims: tuple[str, ...]
    method: str
    factors: tuple[tuple[int, ...], ...]
    shapes: tuple[tuple[int, ...], ...]
    scales: tuple[dict[str, float], ...]
    translations: tuple[dict[str, float], ...]

    @property
    def n_levels(self) -> int:
        return len(self.shapes)

    def cumulative(self, level: int) -> tuple[int, ...]:
        """Factor of ``level`` relative to level 0, per dim."""
        return tuple(math.prod(f[ax] for f in self.factors[: level + 1])
                     for ax in range(len(self.dims)))


def _resolve_method(method: str | None, label: bool) -> str:
    if method is None:
        return "mode" if label else "mean"
    try:
        name = canonical_method(str(method))
    except ValueError:
        raise PyramidError(f"unknown method {method!r}; choose from {METHODS} "
                           "(or 'stride' for 'nearest')", field="method") from None
    if label and not pyramid_method(name).labels:
        raise PyramidError(
            f"method {name!r} can create values that are not labels; a label image "
            f"('image-label' in attrs) is reduced with one of {LABEL_METHODS} (default 'mode')",
            field="method")
    return name


def _as_int(value: Any, what: str, minimum: int) -> int:
    ok = isinstance(value, int | np.integer | float | np.floating) and not isinstance(
        value, bool | np.bool_)
    if not ok or not float(value).is_integer() or int(value) < minimum:
        raise PyramidError(f"must be an integer >= {minimum}, got {value!r}", field=what)
    return int(value)


def _factor_entry(entry: Any, dims: tuple[str, ...], what: str) -> tuple[int, ...]:
    """One level's factors as a tuple over ``dims`` (t and c always 1)."""
    spatial = [d for d in dims if d in SPATIAL]
    out = dict.fromkeys(dims, 1)
    if isinstance(entry, Mapping):
        for key, value in entry.items():
            if key not in dims:
                raise PyramidError(f"no axis {key!r} in dims {dims}", field=what)
            out[key] = _as_int(value, f"{what}.{key}", 1)
    elif isinstance(entry, Sequence) and not isinstance(entry, str):
        names = spatial if len(entry) == len(spatial) else list(dims)
        if len(entry) != len(names):
            raise PyramidError(f"{len(entry)} factors; give one per spatial axis {spatial} "
                               f"or one per dim {list(dims)}", field=what)
        for key, value in zip(names, entry, strict=True):
            out[key] = _as_int(value, f"{what}.{key}", 1)
    else:
        k = _as_int(entry, what, 1)
        for d in spatial:
            out[d] = k
    for d in ("t", "c"):
        if out.get(d, 1) != 1:
            raise PyramidError(f"axis {d!r} is never downsampled; its factor must be 1",
                               field=f"{what}.{d}")
    if all(v == 1 for v in out.values()):
        raise PyramidError("factor 1 on every axis does not reduce anything", field=what)
    return tuple(out[d] for d in dims)


def parse_factors(text: str) -> list[Any]:
    """Command-line factors: levels separated by ``;``, each ``"1,2,2"``, ``"z=1,y=2"`` or ``"2"``.

    >>> parse_factors("1,2,2;2")
    [[1, 2, 2], 2]
    """
    levels: list[Any] = []
    for part in text.split(";"):
        part = part.strip()
        try:
            if "=" in part:
                levels.append({k.strip(): int(v) for k, v in
                               (item.split("=") for item in part.split(","))})
            elif "," in part:
                levels.append([int(v) for v in part.split(",")])
            else:
                levels.append(int(part))
        except ValueError:
            raise PyramidError(f"cannot read {part!r}: use e.g. '1,2,2;2,2,2' or 'z=1,y=2,x=2'",
                               field="factors") from None
    return levels


def _min_sizes(min_size: Any, dims: tuple[str, ...], default: Sequence[int]) -> dict[str, int]:
    spatial = [d for d in dims if d in SPATIAL]
    base = {d: int(default[dims.index(d)]) for d in spatial}
    if min_size is None:
        return base
    if isinstance(min_size, Mapping):
        for key, value in min_size.items():
            if key not in spatial:
                raise PyramidError(f"no spatial axis {key!r} in dims {dims}", field="min_size")
            base[key] = _as_int(value, f"min_size.{key}", 1)
        return base
    v = _as_int(min_size, "min_size", 1)
    return dict.fromkeys(spatial, v)


def _auto_step(shape: dict[str, int], scale: dict[str, float], floor: dict[str, int]
               ) -> dict[str, int] | None:
    """Next level's factors by the anisotropy rule, or ``None`` when no axis can halve."""
    can = [d for d in floor if shape[d] > 1 and -(-shape[d] // 2) >= floor[d]]
    if not can:
        return None
    coarsest = max(scale[d] for d in can)
    fine = [d for d in can if scale[d] * _SQRT2 < coarsest * (1 - 1e-9)]
    return {d: 2 for d in (fine or can)}


def plan_pyramid(
    obj: xr.DataArray,
    levels: int | None = None,
    method: str | None = None,
    factors: Any = None,
    min_size: int | Mapping[str, int] | None = None,
    *,
    chunks: Any = None,
    label: bool | None = None,
) -> PyramidPlan:
    """Plan the levels of a pyramid of ``obj`` (validates every argument; reads no pixels).

    Parameters
    ----------
    obj
        Image with physical coordinates on its spatial axes.
    levels
        Number of levels *including* level 0. ``None``: as many as ``min_size`` allows. When
        given without ``min_size``, axes may shrink down to one voxel, and a count that cannot
        be reached is an error.
    method
        A registered method, see :data:`METHODS` and :func:`register_pyramid_method`.
        ``None``: ``"mean"``, or ``"mode"`` for a label image.
    factors
        Explicit factors instead of the anisotropy rule: a list with one entry per level
        after level 0, each an int (every spatial axis), a ``{dim: k}`` mapping or a sequence
        over the spatial dims. A single int or mapping repeats for every level.
    min_size
        Smallest length (voxels) an axis may be halved to; an int or ``{dim: n}``. Default:
        the chunk length along that axis (``chunks``, else :func:`voxzarr.io.default_chunks`),
        at most :data:`VIEW_FLOOR` (256), so any image wider than a 512-pixel screen tile
        gets at least one reduced level for viewers.
    chunks
        Chunk shape the levels will be written with (sets the default ``min_size``).
    label
        Treat as a label image (default: ``"image-label" in obj.attrs``).
    """
    if not isinstance(obj, xr.DataArray):
        raise PyramidError(f"expects an xarray.DataArray image, got {type(obj).__name__}; "
                           "wrap arrays with vz.from_array", field="obj")
    is_label = ("image-label" in obj.attrs) if label is None else bool(label)
    name = _resolve_method(method, is_label)
    why = check_dtype(name, obj.dtype)
    if why is not None:
        raise PyramidError(why, field="dtype")
    geo = geometry(obj)
    spatial_scale = geo.require_scale()
    dims, shape0 = geo.dims, geo.shape
    if levels is not None:
        levels = _as_int(levels, "levels", 1)

    steps: list[tuple[int, ...]] = []
    if isinstance(factors, Sequence) and not isinstance(factors, str | Mapping):
        steps = [_factor_entry(f, dims, f"factors[{i}]") for i, f in enumerate(factors)]
        if levels is not None and len(steps) != levels - 1:
            raise PyramidError(f"{len(steps)} factor entries for {levels} levels (need "
                               "levels - 1)", field="factors")
    else:
        repeat = None if factors is None else _factor_entry(factors, dims, "factors")
        default_floor = (1,) * len(dims) if levels is not None and min_size is None else \
            tuple(min(c, VIEW_FLOOR) for c in storage_units(dims, shape0, chunks, None)[0])
        floor = _min_sizes(min_size, dims, default_floor)
        cur = dict(zip(dims, shape0, strict=True))
        cur_scale = dict(spatial_scale)
        while levels is None or len(steps) < levels - 1:
            if repeat is None:
                step = _auto_step(cur, cur_scale, floor)
            else:
                reduced = {d: k for d, k in zip(dims, repeat, strict=True) if k > 1}
                ok = all(-(-cur[d] // k) >= floor[d] and cur[d] > 1 for d, k in reduced.items())
                step = reduced if ok else None
            if step is None:
                if levels is not None:
                    raise PyramidError(
                        f"cannot build {levels} levels: after level {len(steps)} (shape "
                        f"{tuple(cur.values())}) no axis can be reduced without going under "
                        f"min_size {floor}", field="levels")
                break
            steps.append(tuple(step.get(d, 1) for d in dims))
            for d, k in step.items():
                cur[d] = -(-cur[d] // k)
                cur_scale[d] *= k
    return _placement(obj, name, steps)


def _placement(obj: xr.DataArray, method: str, steps: list[tuple[int, ...]]) -> PyramidPlan:
    """Shapes, voxel sizes and origins of each level, all derived from level 0."""
    geo = geometry(obj)
    dims = geo.dims
    ones = (1,) * len(dims)
    shapes = [geo.shape]
    scales = [dict(geo.scale)]
    translations = [dict(geo.translation)]
    cum = [1] * len(dims)
    offset = [0] * len(dims)  # nearest: level-0 index of the first kept voxel
    for i, step in enumerate(steps, 1):
        shape = tuple(output_length(n, k, method)
                      for n, k in zip(shapes[-1], step, strict=True))
        if 0 in shape:
            raise PyramidError(f"level {i} would be empty (shape {shape})", field="factors")
        for ax, k in enumerate(step):
            offset[ax] += nearest_offset(k) * cum[ax]
            cum[ax] *= k
        sc, tr = {}, {}
        for d, s0 in geo.scale.items():
            ax = dims.index(d)
            t0 = geo.translation[d]
            sc[d] = cum[ax] * s0
            if method == "nearest":
                tr[d] = t0 + offset[ax] * s0
            else:
                tr[d] = t0 + (cum[ax] - 1) * s0 / 2
        shapes.append(shape)
        scales.append(sc)
        translations.append(tr)
    return PyramidPlan(dims, method, (ones, *steps), tuple(shapes), tuple(scales),
                       tuple(translations))


# ----------------------------------------------------------------------------- reducing
def _on_device(fn: Any, block: Any, device: str) -> Any:
    """Run ``fn`` on the GPU for host blocks when asked; device blocks stay on device."""
    if device == "gpu" and isinstance(block, np.ndarray):
        import cupy

        return cupy.asnumpy(fn(cupy.asarray(block)))
    return fn(block)


def _reduce_kernel(block: Any, *, factors: tuple[int, ...], method: PyramidMethod,
                   device: str) -> Any:
    return _on_device(partial(reduce_block, factors=factors, method=method), block, device)


def _gaussian_kernel(block: Any, *, factors: tuple[int, ...], depth: tuple[int, ...],
                     device: str) -> Any:
    return _on_device(partial(gaussian_reduce_block, factors=factors, depth=depth), block,
                      device)


def _task_block(out_shape: Sequence[int], unit: Sequence[int], factors: Sequence[int],
                itemsize: int, method: str) -> tuple[int, ...]:
    """Output block of one task: whole write units, its input under :data:`TARGET_BYTES`."""
    work = itemsize if method in ("mean", "nearest", "min", "max") else max(itemsize, 8)
    block = [min(u, n) for u, n in zip(unit, out_shape, strict=True)]

    def nbytes(b: list[int]) -> int:
        return math.prod(x * k for x, k in zip(b, factors, strict=True)) * work

    for ax in range(len(block)):
        while block[ax] < out_shape[ax] and nbytes(
                [*block[:ax], block[ax] + unit[ax], *block[ax + 1:]]) <= TARGET_BYTES:
            block[ax] = min(block[ax] + unit[ax], out_shape[ax])
    return tuple(block)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _regular(n: int, size: int) -> tuple[int, ...]:
    full, rem = divmod(n, size)
    return (size,) * full + ((rem,) if rem else ())


def _merge_tail(chunks: tuple[int, ...], need: int) -> tuple[int, ...]:
    """Fold a last chunk shorter than ``need`` into its neighbour."""
    if len(chunks) > 1 and chunks[-1] < need:
        return (*chunks[:-2], chunks[-2] + chunks[-1])
    return chunks


def _reduce_level(x: da.Array, factors: tuple[int, ...], method: str, device: str,
                  out_block: tuple[int, ...]) -> da.Array:
    """One level down: ``x`` rechunked so each task reads ``out_block * factors`` voxels."""
    depth = tuple(gaussian_radius(k) if (method == "gaussian" and k > 1) else 0
                  for k in factors)
    in_chunks = []
    for ax, (n, k) in enumerate(zip(x.shape, factors, strict=True)):
        o = out_block[ax]
        o *= max(1, _ceil(_ceil(depth[ax], k), o))  # multiples of o: inputs >= halo depth
        need = max(depth[ax], nearest_offset(k) + 1 if method == "nearest" else 1)
        in_chunks.append(_merge_tail(_regular(n, o * k), need))
    in_chunks_t = tuple(in_chunks)
    # one chunk along an axis needs no halo: the filter's own `nearest` mode is the border
    depth = tuple(0 if len(cs) == 1 else d for cs, d in zip(in_chunks_t, depth, strict=True))
    if x.chunks != in_chunks_t:
        # block merges between neighbours: plain tasks. Naming the method also spares
        # dask's check for a distributed client, which imports distributed (~0.3 s)
        x = x.rechunk(in_chunks_t, method="tasks")
    out_chunks = tuple(tuple(output_length(c, k, method) for c in cs)
                       for cs, k in zip(in_chunks_t, factors, strict=True))
    xp = array_module(x._meta)
    meta = xp.empty((0,) * x.ndim, dtype=x.dtype)
    if method == "gaussian":
        x = da.overlap.overlap(x, depth=dict(enumerate(depth)),
                               boundary={ax: "nearest" if d else "none"
                                         for ax, d in enumerate(depth)})
        fn = partial(_gaussian_kernel, factors=factors, depth=depth, device=device)
    else:
        # the spec itself travels with the task: workers need not know the registration
        fn = partial(_reduce_kernel, factors=factors, method=pyramid_method(method),
                     device=device)
    return da.map_blocks(fn, x, chunks=out_chunks, dtype=x.dtype, meta=meta,
                         name=f"voxzarr-pyramid-{method}-{uuid.uuid4().hex[:12]}")


def _level_image(data: Any, plan: PyramidPlan, level: int, src: xr.DataArray) -> xr.DataArray:
    """Wrap one level's data with coordinates derived through :func:`make_coords`."""
    geo = geometry(src)
    coords = make_coords(plan.dims, plan.shapes[level], plan.scales[level],
                         plan.translations[level], geo.units)
    coords = coords.drop_vars([d for d in coords if d not in src.coords])
    if "c" in src.coords:
        coords = combine_coords([coords, xr.Coordinates({"c": src.coords["c"].variable})])
    out = xr.DataArray(data, dims=plan.dims, coords=coords, attrs=dict(src.attrs))
    out.name = src.name  # not the dask key of a nameless input
    return out


def _write_units(plan: PyramidPlan, level: int, chunks: Any, shards: Any) -> tuple[int, ...]:
    ck, sh = storage_units(plan.dims, plan.shapes[level], chunks, shards)
    return sh or ck


def build_pyramid(
    obj: xr.DataArray,
    levels: int | None = None,
    method: str | None = None,
    factors: Any = None,
    min_size: int | Mapping[str, int] | None = None,
    device: str = "auto",
    *,
    chunks: Any = None,
    shards: Any = None,
    label: bool | None = None,
) -> xr.DataTree:
    """Lazy multiscale pyramid of ``obj`` as a DataTree of sibling levels ``/0``, ``/1``, ...

    Each level is a Dataset with the variable ``"image"``; level 0 is ``obj`` itself.
    Arguments as for :func:`plan_pyramid`; ``device`` is ``"auto"`` (GPU when CuPy sees
    one), ``"cpu"`` or ``"gpu"``; ``chunks`` / ``shards`` are the shapes the levels will be
    written with (dask chunks are aligned to them). Writing with
    :func:`voxzarr.io.to_ome_zarr` (``pyramid=True``) streams instead: each level is then
    computed from the level below as stored.

    Examples
    --------
    >>> img = vz.from_array(np.zeros((64, 512, 512), "uint16"), "zyx",
    ...                     voxel_size={"z": 1.0, "y": 0.2, "x": 0.2})
    >>> tree = img.vox.pyramid(min_size=32)
    >>> [tree[k].image.shape for k in tree.children]
    [(64, 512, 512), (64, 256, 256), (64, 128, 128), (32, 64, 64), (32, 32, 32)]
    """
    plan = plan_pyramid(obj, levels, method, factors, min_size, chunks=chunks, label=label)
    dev = resolve_device(device, obj.data)
    prev = obj.data if isinstance(obj.data, da.Array) else dask_view(obj.data, obj.shape)
    children = {"0": xr.Dataset({IMAGE_VAR: obj.rename(None)})}
    for i in range(1, plan.n_levels):
        block = _task_block(plan.shapes[i], _write_units(plan, i, chunks, shards),
                            plan.factors[i], obj.dtype.itemsize, plan.method)
        prev = _reduce_level(prev, plan.factors[i], plan.method, dev, block)
        img = _level_image(prev, plan, i, obj)
        children[str(i)] = xr.Dataset({IMAGE_VAR: img.rename(None)})
    tree = xr.DataTree.from_dict(children)
    tree.attrs.update({"name": str(obj.name) if obj.name is not None else IMAGE_VAR,
                       "pyramid_method": plan.method})
    return tree


# ----------------------------------------------------------------------------- streaming
def _child(location: Any, path: str) -> StorePath:
    """StorePath of ``path`` inside the group at ``location`` (store, StorePath or path)."""
    if isinstance(location, StorePath):
        return location / path
    if isinstance(location, zarr.Group):
        return location.store_path / path
    store = _store.open_store(location, mode="a")
    return StorePath(store, path)


def _read_level(location: Any, path: str, block: tuple[int, ...],
                factors: tuple[int, ...]) -> da.Array:
    """The level stored at ``location/path`` as dask, one chunk per task input region."""
    arr = zarr.open_array(store=_child(location, path), mode="r")
    chunks = tuple(b * k for b, k in zip(block, factors, strict=True))
    return da.from_array(arr, chunks=chunks, lock=False,
                         name=f"voxzarr-pyramid-read-{uuid.uuid4().hex[:12]}")


def _streamed(src: xr.DataArray, location: Any, plan: PyramidPlan, paths: Sequence[str],
              units: Sequence[tuple[int, ...]], device: str
              ) -> Iterator[tuple[str, xr.DataArray]]:
    for i in range(1, plan.n_levels):
        block = _task_block(plan.shapes[i], units[i], plan.factors[i], src.dtype.itemsize,
                            plan.method)
        if i == 1 and not isinstance(src.data, da.Array):
            # level 0 is an array in memory: reading it is cheaper than decoding its copy
            prev = dask_view(src.data, tuple(
                b * k for b, k in zip(block, plan.factors[1], strict=True)))
        else:
            prev = _read_level(location, paths[i - 1], block, plan.factors[i])
        data = _reduce_level(prev, plan.factors[i], plan.method, device, block)
        yield paths[i], _level_image(data, plan, i, src)


def _chained(src: xr.DataArray, plan: PyramidPlan, units: Sequence[tuple[int, ...]],
             device: str) -> list[da.Array]:
    """Levels 1.. as one dask graph, each reduced from the level below *in memory*.

    This is the fused write: a level's blocks, once computed, are both encoded and reduced
    into the next level, so no level is read back and decoded from the store, and small
    levels overlap with the large ones instead of waiting for them. A task still holds a few
    blocks of :data:`TARGET_BYTES` input, and the threaded scheduler frees a block as soon
    as its write and its reduction are done, so memory stays bounded as with streaming. The
    values are the ones :func:`_streamed` computes (the kernels are blockwise exact and a
    level is stored with its own dtype), so both paths write identical bytes.
    """
    out: list[da.Array] = []
    prev: da.Array | None = None
    for i in range(1, plan.n_levels):
        block = _task_block(plan.shapes[i], units[i], plan.factors[i], src.dtype.itemsize,
                            plan.method)
        if prev is None:
            prev = src.data if isinstance(src.data, da.Array) else dask_view(
                src.data, tuple(b * k for b, k in zip(block, plan.factors[1], strict=True)))
        prev = _reduce_level(prev, plan.factors[i], plan.method, device, block)
        out.append(prev)
    return out


def stream_levels(
    obj: xr.DataArray,
    group_location: Any,
    *,
    chunks: Any = None,
    shards: Any = None,
    label: bool | None = None,
    levels: int | None = None,
    method: str | None = None,
    factors: Any = None,
    min_size: int | Mapping[str, int] | None = None,
    device: str = "auto",
) -> LevelStream:
    """``(path, level)`` pairs for :func:`voxzarr.io.write_multiscale`, computed as written.

    Handed to :func:`voxzarr.io.write_multiscale` whole, the stream is written *fused*:
    ``fused()`` gives all levels as one graph in which each level is reduced from the
    level below in memory (see :func:`_chained`). Iterated, level 0 is ``obj`` and level
    ``i`` is produced only when asked for, after level ``i - 1`` has been written to
    ``group_location``, and it reads that stored level back lazily (level 1 reads ``obj``
    itself when that is an in-memory array: cheaper than decoding). Both give the same
    bytes, and memory stays at a few task blocks (:data:`TARGET_BYTES` of input each)
    however large the image. All arguments are checked here, before anything is written.

    This is the ``"pyramid"`` level stream of ``voxzarr._registry.LEVEL_STREAMS``, which
    :func:`voxzarr.io.to_ome_zarr` writes for ``pyramid=...`` (io is below this module and
    finds it by name).
    """
    plan = plan_pyramid(obj, levels, method, factors, min_size, chunks=chunks, label=label)
    dev = resolve_device(device)
    paths = [str(i) for i in range(plan.n_levels)]
    units = [_write_units(plan, i, chunks, shards) for i in range(plan.n_levels)]

    def generate() -> Iterator[tuple[str, xr.DataArray]]:
        yield "0", obj
        yield from _streamed(obj, group_location, plan, paths, units, dev)

    def fused() -> list[tuple[str, xr.DataArray]]:
        data = _chained(obj, plan, units, dev)
        return [("0", obj), *((paths[i], _level_image(d, plan, i, obj))
                              for i, d in enumerate(data, 1))]

    return LevelStream(generate(), plan, fused)


class LevelStream(_write.LevelStream):
    """The levels of a pyramid as :func:`voxzarr.io.write_multiscale` takes them, with their
    plan (a :class:`voxzarr._write.LevelStream`).

    Iterated, it streams level by level, each read back from the store; ``fused()``, when
    set, returns every level at once as one dask graph (see :func:`_chained`), which the
    writer writes in one pass. ``ngff_type`` / ``ngff_metadata`` record the method and the
    plan (:func:`ngff_metadata`).
    """

    plan: PyramidPlan

    def __init__(self, levels: Iterator[tuple[str, xr.DataArray]], plan: PyramidPlan,
                 fused: Callable[[], list[tuple[str, xr.DataArray]]] | None = None):
        super().__init__(levels, fused=fused, ngff_type=plan.method,
                         ngff_metadata=ngff_metadata(plan))
        self.plan = plan


def ngff_metadata(plan: PyramidPlan) -> dict[str, Any]:
    """``multiscales[0].metadata``: how the levels were made, enough to redo it."""
    from . import __version__

    return {
        "description": "block reduce; partial edge blocks over the voxels present; integer "
                       "results rounded half to even",
        "method": f"voxzarr.pyramid ({plan.method})",
        "version": __version__,
        "kwargs": {"method": plan.method, "factors": [list(f) for f in plan.factors[1:]]},
    }


# ----------------------------------------------------------------------------- add levels
def _capped_units(arr: zarr.Array, shape: Sequence[int]) -> tuple[tuple[int, ...],
                                                               tuple[int, ...] | None]:
    ck = tuple(min(c, n) for c, n in zip(arr.chunks, shape, strict=True))
    if not arr.shards:
        return ck, None
    sh = tuple(min(s, -(-n // c) * c) for s, c, n in zip(arr.shards, ck, shape, strict=True))
    return ck, sh


def _create_like(group: zarr.Group, path: str, ref: zarr.Array, shape: tuple[int, ...],
                 dims: tuple[str, ...]) -> zarr.Array:
    """An empty level array with ``ref``'s dtype, codecs and chunking (capped to ``shape``)."""
    ck, sh = _capped_units(ref, shape)
    kwargs: dict[str, Any] = dict(shape=shape, dtype=ref.dtype, chunks=ck, shards=sh,
                                  compressors=ref.compressors, filters=ref.filters,
                                  fill_value=ref.fill_value, overwrite=True)
    if ref.metadata.zarr_format == 3:
        kwargs.update(serializer=ref.serializer, dimension_names=list(dims),
                      chunk_key_encoding=ref.metadata.chunk_key_encoding)
    else:
        kwargs["chunk_key_encoding"] = {"name": "v2",
                                        "separator": ref.metadata.dimension_separator}
    return group.create_array(path, **kwargs)


def _update_datasets(group: zarr.Group, version: str, new_levels: Sequence[Level],
                     ms: Any) -> None:
    """Replace ``multiscales[0].datasets`` (absolute transforms); keep every other key."""
    block = multiscales_attrs(replace(ms, levels=tuple(new_levels)), version)
    fresh = block["multiscales"][0]
    attrs = group.attrs.asdict()
    ome = dict(attrs["ome"]) if version != "0.4" else attrs
    entries = [dict(e) for e in ome["multiscales"]]
    entry = {k: v for k, v in entries[0].items() if k != "coordinateTransformations"}
    for key in ("datasets", "type", "metadata"):
        if key in fresh:
            entry[key] = fresh[key]
    entries[0] = entry
    ome["multiscales"] = entries
    if version != "0.4":
        group.attrs.update({"ome": ome})
    else:
        group.attrs.update({"multiscales": entries})


def _open_image_group(location: Any, label: str | None, mode: str,
                      storage_options: dict | None) -> tuple[zarr.Group, str]:
    path = _store.local_path(location)
    if mode != "r" and path is not None and path.suffix == ".zip":
        raise StoreError("cannot add levels inside a .zip store; unzip it, add levels, zip",
                         path=location)
    if path is not None and not path.exists():
        raise StoreError("no such file or directory", path=location)
    if mode == "r":
        root = _store.open_root(location, storage_options=storage_options)
    else:
        store = _store.open_store(location, mode="a", storage_options=storage_options)
        try:
            root = zarr.open_group(store, mode="r+")
        except Exception as err:
            raise StoreError(f"not a zarr group ({type(err).__name__}: {err})",
                             path=location) from None
    return resolve_image_group(root, location=location, label=label)


def label_names(location: Any, storage_options: dict | None = None) -> list[str]:
    """Names listed in the ``labels`` group of an image (empty when it has none)."""
    root = _store.open_root(location, storage_options=storage_options)
    group, _ = resolve_image_group(root, location=location)
    try:
        labels = group["labels"]
    except KeyError:
        return []
    return [str(n) for n in ome_attrs(labels.attrs.asdict()).get("labels", [])]


def plan_for(location: Any, levels: int | None = None, method: str | None = None,
             factors: Any = None, min_size: int | Mapping[str, int] | None = None, *,
             label: str | None = None, storage_options: dict | None = None) -> PyramidPlan:
    """The plan :func:`add_levels` would follow for the image at ``location`` (reads no pixels)."""
    group, where = _open_image_group(location, label, "r", storage_options)
    _, arrays = read_multiscale_metadata(group, where)
    img0 = open_image(group, level=0)
    if label is not None and factors is None and levels is None and min_size is None:
        factors = _parent_factors(location, storage_options)
    return plan_pyramid(img0, levels, method, factors, min_size, chunks=arrays[0].chunks,
                        label=label is not None or None)


def _parent_factors(location: Any, storage_options: dict | None) -> list[tuple[int, ...]] | None:
    """Per-level factors of the image a label belongs to, so its levels match the image's.

    ``None`` (plan afresh) when the image has one level or non-integer level ratios.
    """
    group, where = _open_image_group(location, None, "r", storage_options)
    ms, _ = read_multiscale_metadata(group, where)
    out = []
    for prev, cur in zip(ms.levels, ms.levels[1:], strict=False):
        ratio = [c / p for c, p in zip(cur.scale, prev.scale, strict=True)]
        ks = [round(r) for r in ratio]
        if any(k < 1 or abs(r - k) > 1e-6 * k for r, k in zip(ratio, ks, strict=True)):
            return None
        out.append(tuple(ks))
    return out or None


def format_plan(plan: PyramidPlan) -> str:
    """One line per level: shape, voxel size and origin of the spatial axes."""
    spatial = [d for d in plan.dims if d in SPATIAL]
    rows = [f"{'level':>5}  {'shape':<22}{'voxel size (' + ', '.join(spatial) + ')':<34}origin"]
    for i, shape in enumerate(plan.shapes):
        size = ", ".join(f"{plan.scales[i][d]:.6g}" for d in spatial)
        origin = ", ".join(f"{plan.translations[i][d]:.6g}" for d in spatial)
        rows.append(f"{i:>5}  {str(shape):<22}{size:<34}{origin}")
    return "\n".join(rows)


@progress_keyword
def add_levels(
    location: Any,
    levels: int | None = None,
    method: str | None = None,
    factors: Any = None,
    min_size: int | Mapping[str, int] | None = None,
    device: str = "auto",
    *,
    label: str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    storage_options: dict | None = None,
) -> PyramidPlan:
    """Add pyramid levels to an existing OME-Zarr image; level 0 is read, never rewritten.

    New levels copy level 0's dtype, codecs, chunk and shard shape. The multiscales metadata
    is updated last, so an interrupted run leaves the dataset as it was (unlisted arrays are
    overwritten next time). An image that already has levels above 0 needs ``overwrite``:
    its metadata is first cut back to level 0, then the levels are rebuilt.

    Parameters
    ----------
    location
        Local directory, fsspec URL or zarr store of the image (not a ``.zip``).
    label
        Build the pyramid of ``labels/<label>`` instead of the image.
    levels, method, factors, min_size, device
        As for :func:`build_pyramid`; ``min_size`` defaults to level 0's chunk shape.
    overwrite
        Rebuild the levels above 0 of an image that already has them.
    progress
        Show a progress bar (default: on for an interactive terminal);
        ``progress_bar=`` is its deprecated old name.
    storage_options
        fsspec options for a URL.

    Returns
    -------
    PyramidPlan
        What was written.
    """
    group, where = _open_image_group(location, label, "a", storage_options)
    ms, arrays = read_multiscale_metadata(group, where)
    if ms.version not in ("0.4", "0.5"):
        raise MetadataError(f"NGFF {ms.version} is read-only here; upgrade it to 0.5 first "
                            "(voxzarr upgrade)", path=where, field="version")
    if canonical_dims(ms.dims) != ms.dims:
        # new levels are built from the canonical (transposed) read: they would not match
        # the stored axis order the metadata declares
        raise MetadataError(f"axes are stored in the order {''.join(ms.dims)!r}; levels can "
                            "be added only to t, c, z, y, x stores (rewrite it with "
                            "vz.open_image(...).vox.to_ome_zarr(..., pyramid=True))",
                            path=where, field="multiscales[0].axes")
    old_paths = [lv.path for lv in ms.levels]
    if len(ms.levels) > 1 and not overwrite:
        raise OverwriteError(f"already has {len(ms.levels)} levels; pass overwrite=True "
                             "(--overwrite) to rebuild levels above 0 from level 0",
                             path=where, field="multiscales[0].datasets")
    img0 = open_image(group, level=0)
    arr0 = arrays[0]
    if label is not None and factors is None and levels is None and min_size is None:
        factors = _parent_factors(location, storage_options)
    plan = plan_pyramid(img0, levels, method, factors, min_size, chunks=arr0.chunks,
                        label=label is not None or None)
    dev = resolve_device(device)
    ms = replace(ms, type=plan.method, metadata=ngff_metadata(plan))
    paths = [old_paths[0]] + [str(i) for i in range(1, plan.n_levels)]
    if len(set(paths)) != len(paths):
        raise MetadataError(f"level 0 is stored at {old_paths[0]!r}, which a new level "
                            "needs", path=where, field="multiscales[0].datasets[0].path")
    lv0 = ms.levels[0]
    if len(ms.levels) > 1:  # cut back to level 0 first: the dataset stays valid meanwhile
        _update_datasets(group, ms.version, [lv0], ms)
    units = [_capped_units(arr0, s) for s in plan.shapes]
    new_levels = [lv0]
    # fused: level 0 is read and decoded once; every new level is reduced from the one
    # below in memory and all are written in one pass (see _chained)
    data = _chained(img0, plan, [u[1] or u[0] for u in units], dev)
    targets = []
    for i in range(1, plan.n_levels):
        out = _create_like(group, paths[i], arr0, plan.shapes[i], plan.dims)
        targets.append(chunk_target(out))
        new_levels.append(Level(paths[i], _vector(plan, i, "scale"), _vector(plan, i, "t")))
    local = write_scheduler(group.store)
    if data:
        with show_progress(f"levels {paths[1]}-{paths[-1]}", progress):
            da.store(data, targets, lock=False, compute=True, **local)
    _update_datasets(group, ms.version, new_levels, ms)  # metadata last
    for old in old_paths[1:]:
        if old not in paths:
            del group[old]
    return plan


def _vector(plan: PyramidPlan, level: int, which: str) -> tuple[float, ...]:
    """NGFF scale or translation vector of ``level`` in dims order (channel 1 / 0)."""
    values = plan.scales[level] if which == "scale" else plan.translations[level]
    neutral = 1.0 if which == "scale" else 0.0
    return tuple(float(values.get(d, neutral)) if d != "c" else neutral for d in plan.dims)
