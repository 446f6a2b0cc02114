"""Halo layout geometry and its metadata: pure arithmetic, no I/O.

One axis of an image of length ``n`` is cut into core chunks (``starts[k]`` to
``starts[k+1]``). Block ``k`` with depth ``h`` covers the image positions
``[starts[k] - h, stop_k + h)``, its *span*. On an ordinary axis only the positions inside
``[0, n)`` exist (the block's *valid* part; the rest is the out-of-image extent). On a periodic
axis every span position ``p`` holds image voxel ``p mod n`` (the opposite face).

In a stored halo array the chunks are regular (core chunk ``c``) and block ``k`` occupies
stored chunk ``k`` of size ``c + 2h``, whose local index ``j`` is image position
``k*c - h + j``. See ``spec/halo.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import HaloError, MetadataError
from ..ngff.layouts import HALO_LAYOUT, HALO_VERSION, check_version

__all__ = [
    "LAYOUT_VERSION",
    "AxisLayout",
    "HaloLayout",
    "HaloMeta",
    "storage_overhead",
]

#: version of the stored halo layout described in ``spec/halo.md`` (written as this string;
#: the integer 1 of earlier halo arrays reads as ``"1.0"``)
LAYOUT_VERSION = HALO_VERSION


@dataclass(frozen=True)
class AxisLayout:
    """Halo geometry of one axis.

    Parameters
    ----------
    size
        Image length ``n`` along the axis.
    starts
        Start of each core chunk (``starts[0] == 0``, increasing, all ``< size``).
    depth
        Halo depth ``h`` on both sides of every core chunk.
    periodic
        Whether positions outside ``[0, n)`` wrap around (hold the opposite face).
    """

    size: int
    starts: tuple[int, ...]
    depth: int
    periodic: bool = False

    @classmethod
    def regular(cls, size: int, chunk: int, depth: int, periodic: bool = False) -> AxisLayout:
        """Core chunks of length ``chunk`` (the last one may be partial)."""
        if size < 1 or chunk < 1 or depth < 0:
            raise HaloError(f"bad axis: size {size}, chunk {chunk}, depth {depth}",
                            field="depth")
        return cls(size, tuple(range(0, size, chunk)), depth, periodic)

    @classmethod
    def from_chunks(cls, chunks: Sequence[int], depth: int, periodic: bool = False
                    ) -> AxisLayout:
        """Layout over dask-style chunk lengths (may be irregular)."""
        starts = tuple(int(s) for s in np.cumsum([0, *chunks[:-1]]))
        return cls(int(sum(chunks)), starts, int(depth), periodic)

    @property
    def n_blocks(self) -> int:
        return len(self.starts)

    @property
    def chunk(self) -> int:
        """Regular core chunk length (the first chunk's length)."""
        return self.core(0)[1]

    @property
    def chunks(self) -> tuple[int, ...]:
        """Core chunk lengths, dask style."""
        return tuple(b - a for a, b in (self.core(k) for k in range(self.n_blocks)))

    def core(self, k: int) -> tuple[int, int]:
        """Image positions ``[start, stop)`` of core chunk ``k``."""
        stop = self.starts[k + 1] if k + 1 < self.n_blocks else self.size
        return self.starts[k], stop

    def span(self, k: int) -> tuple[int, int]:
        """Positions ``[start - h, stop + h)`` block ``k`` needs (may leave ``[0, n)``)."""
        a, b = self.core(k)
        return a - self.depth, b + self.depth

    def valid(self, k: int) -> tuple[int, int]:
        """The part of the span that holds image voxels (the whole span when periodic)."""
        lo, hi = self.span(k)
        if self.periodic:
            return lo, hi
        return max(lo, 0), min(hi, self.size)

    def outside(self, k: int) -> tuple[int, int]:
        """Out-of-image extent ``(before, after)`` of block ``k``'s span (0 when periodic)."""
        lo, hi = self.span(k)
        vlo, vhi = self.valid(k)
        return vlo - lo, hi - vhi

    def core_in_valid(self, k: int) -> slice:
        """Where the core sits inside the valid part of block ``k``."""
        a, b = self.core(k)
        vlo = self.valid(k)[0]
        return slice(a - vlo, b - vlo)

    def runs(self, k: int) -> list[tuple[int, int, int]]:
        """The valid part of block ``k`` as contiguous image runs ``(src_lo, src_hi, dst_lo)``.

        One run on an ordinary axis; a periodic span that wraps gives one run per lap.
        """
        vlo, vhi = self.valid(k)
        out, pos = [], vlo
        while pos < vhi:
            src = pos % self.size
            length = min(vhi - pos, self.size - src)
            out.append((src, src + length, pos - vlo))
            pos += length
        return out

    def blocks_touching(self, lo: int, hi: int) -> list[int]:
        """Blocks whose valid part contains any image position in ``[lo, hi)``."""
        if hi <= lo:
            return []
        hit = []
        for k in range(self.n_blocks):
            for src_lo, src_hi, _ in self.runs(k):
                if src_lo < hi and lo < src_hi:
                    hit.append(k)
                    break
        return hit

    def chunk_of(self, pos: int) -> int:
        """Index of the core chunk holding image position ``pos``."""
        return int(np.searchsorted(self.starts, pos, side="right") - 1)


@dataclass(frozen=True)
class HaloLayout:
    """Halo geometry of an n-d image: one :class:`AxisLayout` per dimension."""

    dims: tuple[str, ...]
    axes: tuple[AxisLayout, ...]

    @classmethod
    def regular(cls, dims: Sequence[str], shape: Sequence[int], chunks: Sequence[int],
                depth: Sequence[int], periodic: Sequence[bool]) -> HaloLayout:
        axes = tuple(AxisLayout.regular(int(n), int(c), int(h), bool(p))
                     for n, c, h, p in zip(shape, chunks, depth, periodic, strict=True))
        return cls(tuple(dims), axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def depth(self) -> tuple[int, ...]:
        return tuple(a.depth for a in self.axes)

    @property
    def core_chunks(self) -> tuple[int, ...]:
        return tuple(a.chunk for a in self.axes)

    @property
    def numblocks(self) -> tuple[int, ...]:
        return tuple(a.n_blocks for a in self.axes)

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Core chunks, dask style."""
        return tuple(a.chunks for a in self.axes)

    @property
    def block_shape(self) -> tuple[int, ...]:
        """Stored chunk shape ``c + 2h``."""
        return tuple(a.chunk + 2 * a.depth for a in self.axes)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """Shape of the halo array, ``n_chunks * (c + 2h)``."""
        return tuple(a.n_blocks * (a.chunk + 2 * a.depth) for a in self.axes)

    def blocks(self) -> Iterator[tuple[int, ...]]:
        return itertools.product(*(range(n) for n in self.numblocks))

    def stored_slices(self, index: Sequence[int]) -> tuple[slice, ...]:
        """Where block ``index`` lives in the halo array (exactly one stored chunk)."""
        return tuple(slice(k * b, (k + 1) * b)
                     for k, b in zip(index, self.block_shape, strict=True))

    def valid_in_stored(self, index: Sequence[int]) -> tuple[slice, ...]:
        """The valid part of block ``index`` inside its stored chunk."""
        out = []
        for a, k in zip(self.axes, index, strict=True):
            lo = a.span(k)[0]
            vlo, vhi = a.valid(k)
            out.append(slice(vlo - lo, vhi - lo))
        return tuple(out)

    def with_depth(self, depth: Sequence[int]) -> HaloLayout:
        """Same chunks, another depth (used to crop a deeper stored block)."""
        return HaloLayout(self.dims, tuple(
            AxisLayout(a.size, a.starts, int(h), a.periodic)
            for a, h in zip(self.axes, depth, strict=True)))

    def crop(self, index: Sequence[int], depth: Sequence[int]) -> tuple[slice, ...]:
        """Slices of block ``index``'s valid part that keep only ``depth`` around the core."""
        out = []
        for a, k, h in zip(self.axes, index, depth, strict=True):
            vlo, vhi = a.valid(k)
            c0, c1 = a.core(k)
            lo, hi = c0 - h, c1 + h
            if not a.periodic:
                lo, hi = max(lo, 0), min(hi, a.size)
            out.append(slice(lo - vlo, hi - vlo))
        return tuple(out)

    def core_slices(self, index: Sequence[int]) -> tuple[slice, ...]:
        """Image slices of core chunk ``index``."""
        return tuple(slice(*a.core(k)) for a, k in zip(self.axes, index, strict=True))

    def core_in_valid(self, index: Sequence[int]) -> tuple[slice, ...]:
        return tuple(a.core_in_valid(k) for a, k in zip(self.axes, index, strict=True))

    def blocks_touching(self, region: Sequence[slice]) -> list[tuple[int, ...]]:
        """Every block whose valid part overlaps the image ``region`` (a slice per axis)."""
        per_axis = []
        for a, s in zip(self.axes, region, strict=True):
            lo, hi, _ = s.indices(a.size)
            per_axis.append(a.blocks_touching(lo, hi))
        return list(itertools.product(*per_axis))


def storage_overhead(chunk: Sequence[int], depth: Sequence[int]) -> float:
    """Extra stored voxels of a halo array relative to the image: ``prod((c+2h)/c) - 1``."""
    ratio = 1.0
    for c, h in zip(chunk, depth, strict=True):
        ratio *= (c + 2 * h) / c
    return ratio - 1.0


# --------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class HaloMeta:
    """Metadata of one halo array, stored under its ``"voxzarr"`` attribute key
    (:data:`~voxzarr.ngff.layouts.VOXZARR_KEY`)."""

    source_level: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    core_chunks: tuple[int, ...]
    depth: tuple[int, ...]
    periodic: tuple[str, ...]
    generation: int
    dtype: str
    source_chunks: tuple[int, ...]
    border: str = "valid"
    version: str = LAYOUT_VERSION

    @property
    def layout(self) -> HaloLayout:
        return HaloLayout.regular(self.dims, self.shape, self.core_chunks, self.depth,
                                  [d in self.periodic for d in self.dims])

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": HALO_LAYOUT,
            "version": self.version,
            "source_level": self.source_level,
            "source": f"../../{self.source_level}",
            "dims": list(self.dims),
            "shape": list(self.shape),
            "core_chunks": list(self.core_chunks),
            "depth": list(self.depth),
            "border": self.border,
            "periodic": list(self.periodic),
            "fill_value": 0,
            "generation": self.generation,
            "dtype": self.dtype,
            "source_chunks": list(self.source_chunks),
        }

    @classmethod
    def from_dict(cls, raw: Any, *, path: object = None) -> HaloMeta:
        """Parse the ``"voxzarr"`` attribute of a halo array, naming the field at fault."""
        if not isinstance(raw, Mapping) or raw.get("layout") != HALO_LAYOUT:
            raise MetadataError("not a halo array (no voxzarr.layout == 'halo'); it may be "
                                "incomplete: rebuild it with to_halo", path=path,
                                field="voxzarr.layout")
        check_version(raw.get("version"), LAYOUT_VERSION, layout=HALO_LAYOUT, path=path)
        dims = _ints_or_names(raw, "dims", path, names=True)
        n = len(dims)
        fields = {k: _ints_or_names(raw, k, path) for k in
                  ("shape", "core_chunks", "depth", "source_chunks")}
        for k, v in fields.items():
            if len(v) != n:
                raise MetadataError(f"{k} has {len(v)} entries for {n} dims", path=path,
                                    field=f"voxzarr.{k}")
        if any(v < 0 for v in fields["depth"]) or any(v < 1 for v in fields["core_chunks"]):
            raise MetadataError("depth must be >= 0 and core_chunks >= 1", path=path,
                                field="voxzarr.depth")
        periodic = raw.get("periodic", [])
        if not isinstance(periodic, list) or any(p not in dims for p in periodic):
            raise MetadataError(f"periodic must list dims of {dims}, got {periodic!r}",
                                path=path, field="voxzarr.periodic")
        if raw.get("border") != "valid":
            raise MetadataError(f"border {raw.get('border')!r} is not supported; expected "
                                "'valid'", path=path, field="voxzarr.border")
        gen = raw.get("generation")
        if not isinstance(gen, int) or isinstance(gen, bool):
            raise MetadataError(f"generation must be an integer, got {gen!r}", path=path,
                                field="voxzarr.generation")
        return cls(
            source_level=str(raw.get("source_level")), dims=tuple(dims),
            shape=tuple(fields["shape"]), core_chunks=tuple(fields["core_chunks"]),
            depth=tuple(fields["depth"]), periodic=tuple(periodic), generation=gen,
            dtype=str(raw.get("dtype")), source_chunks=tuple(fields["source_chunks"]),
        )


def _ints_or_names(raw: Mapping[str, Any], key: str, path: object, names: bool = False
                   ) -> list[Any]:
    value = raw.get(key)
    ok = isinstance(value, list) and all(
        isinstance(v, str) if names else (isinstance(v, int) and not isinstance(v, bool))
        for v in value)
    if not ok:
        kind = "names" if names else "integers"
        raise MetadataError(f"{key} must be a list of {kind}, got {value!r}", path=path,
                            field=f"voxzarr.{key}")
    return list(value)
