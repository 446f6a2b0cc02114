"""Resolve what users pass as a location (path, zip, URL, store, group) into zarr objects."""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zarr
import zarr.storage
from zarr.core.sync import sync

from .errors import OverwriteError, StoreError

__all__ = ["open_store", "open_root", "local_path", "atomic_target", "exists", "process_local"]


def local_path(location: Any) -> Path | None:
    """The local filesystem path of ``location`` or ``None`` for stores and URLs."""
    if isinstance(location, os.PathLike):
        return Path(location)
    if isinstance(location, str):
        if "://" in location and not location.startswith("file://"):
            return None
        return Path(location.removeprefix("file://"))
    if isinstance(location, zarr.storage.LocalStore):
        return Path(location.root)
    return None


def open_store(location: Any, *, mode: str = "r", storage_options: dict | None = None) -> Any:
    """A zarr store for ``location``: local directory, ``.zip`` file, fsspec URL or a store."""
    read_only = mode == "r"
    if isinstance(location, zarr.Group | zarr.Array):
        return location.store
    if not isinstance(location, str | os.PathLike):
        return location  # already a store
    path = local_path(location)
    if path is None:
        return zarr.storage.FsspecStore.from_url(
            str(location), storage_options=storage_options, read_only=read_only
        )
    if path.suffix == ".zip" and read_only:
        if not path.exists():
            raise StoreError("no such file", path=path)
        return zarr.storage.ZipStore(path, mode="r")
    if read_only and not path.exists():
        raise StoreError("no such file or directory", path=path)
    return zarr.storage.LocalStore(path, read_only=read_only)


def open_root(location: Any, *, storage_options: dict | None = None) -> zarr.Group:
    """Open ``location`` read-only as a zarr group (v2 or v3), with a clear error if it is not."""
    if isinstance(location, zarr.Group):
        return location
    store = open_store(location, mode="r", storage_options=storage_options)
    try:
        # zarr v3 first: one request for zarr.json, where zarr's format detection would
        # also ask for .zgroup, .zattrs and .zmetadata (each a round trip on object stores)
        return zarr.open_group(store, mode="r", zarr_format=3)
    except Exception:  # not a v3 group: let zarr detect the format
        pass
    try:
        return zarr.open_group(store, mode="r")
    except Exception as err:  # zarr raises several types for "not a group"
        raise StoreError(f"not a zarr group ({type(err).__name__}: {err})", path=location) from None


def exists(location: Any, storage_options: dict | None = None) -> bool:
    """Whether something (a zarr node or any file) already lives at ``location``.

    Remote locations are listed with ``storage_options`` (endpoint, credentials options); a
    store that cannot be reached raises :class:`StoreError` rather than reading as empty, so
    an unreachable target is never taken as free to write.
    """
    path = local_path(location)
    if path is not None:
        return path.exists()
    store = open_store(location, mode="r", storage_options=storage_options)
    if isinstance(store, zarr.storage.StorePath):
        store, prefix = store.store, store.path
    else:
        prefix = ""
    if not getattr(store, "supports_listing", False):
        try:
            zarr.open(zarr.storage.StorePath(store, prefix), mode="r")
            return True
        except Exception:
            return False

    async def first_key() -> bool:
        async for _ in store.list_dir(prefix):
            return True
        return False

    try:
        return bool(sync(first_key()))
    except FileNotFoundError:
        return False
    except Exception as err:  # credentials, endpoint, network: say so, never guess "free"
        raise StoreError(f"cannot check whether anything exists here ({type(err).__name__}: "
                         f"{err})", path=location) from err


def process_local(store: Any) -> bool:
    """Whether ``store`` lives in this process only (memory stores, an open zip file).

    Worker processes of a ``dask.distributed`` cluster get a *copy* of such a store, so
    writes made there would be lost: writers run their tasks in this process instead.
    """
    if isinstance(store, zarr.storage.StorePath):
        store = store.store
    if isinstance(store, zarr.storage.MemoryStore | zarr.storage.ZipStore):
        return True
    fs = getattr(store, "fs", None)
    fs = getattr(fs, "sync_fs", fs)  # zarr wraps synchronous filesystems
    protocol = getattr(fs, "protocol", ())
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return "memory" in protocols


@contextmanager
def atomic_target(location: Any, *, overwrite: bool,
                  storage_options: dict | None = None) -> Iterator[Any]:
    """Yield where to write so that an interrupted write never looks complete.

    Local paths: the data is written to a hidden sibling and renamed into place at the end
    (the old dataset, if ``overwrite``, is removed only after the new one is complete).
    Other stores: written in place; callers write the NGFF metadata last, so a partial
    write has no ``multiscales`` and does not open as an image. ``storage_options`` reach
    the remote existence check (endpoint, anonymous access, ...).
    """
    path = local_path(location)
    if path is None:
        if not overwrite and exists(location, storage_options):
            raise OverwriteError("already exists; pass overwrite=True to replace it",
                                 path=location)
        yield location
        return
    if path.exists() and not overwrite:
        raise OverwriteError("already exists; pass overwrite=True to replace it", path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{uuid.uuid4().hex[:8]}.{path.name}")  # keeps the suffix
    # zip archives cannot rewrite a member, so write a directory and pack it at the end
    staging = tmp.with_name(tmp.name + ".d") if path.suffix == ".zip" else tmp
    try:
        yield staging
        if staging != tmp:
            _zip_directory(staging, tmp)
            _remove(staging)
    except BaseException:
        _remove(staging)
        _remove(tmp)
        raise
    if path.exists():
        trash = path.with_name(f".old-{uuid.uuid4().hex[:8]}.{path.name}")
        os.replace(path, trash)
        os.replace(tmp, path)
        _remove(trash)
    else:
        os.replace(tmp, path)


def _zip_directory(src: Path, dest: Path) -> None:
    """Pack a store directory into an uncompressed zip (chunks are compressed already)."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(src).as_posix())


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()
