"""Resolve what users pass as a location (path, zip, URL, store, group) into zarr objects.

Writers resolve a location once (:func:`resolve` -> :class:`StoreRef`) and pass the reference
down; :class:`AtomicWrite` is how a write avoids ever looking complete before it is, in one
step (:func:`atomic_target`) or split around a deferred computation (``compute=False``).
"""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr
import zarr.storage
from zarr.core.sync import sync

from .errors import OverwriteError, StoreError

__all__ = [
    "AtomicWrite",
    "StoreRef",
    "atomic_target",
    "base_store",
    "begin_atomic",
    "check_free",
    "exists",
    "local_path",
    "move_into_place",
    "open_root",
    "open_store",
    "process_local",
    "resolve",
]


@dataclass(frozen=True)
class StoreRef:
    """A location resolved once: the zarr store, the group path in it, and how to name it.

    Writers resolve what the caller passed (path, ``.zip``, URL, store, group) with
    :func:`resolve` and hand this down, so no step below opens the location again. The
    store functions of this module accept a ``StoreRef`` wherever they take a location.
    """

    #: what the caller passed; returned by writers and shown in messages
    location: Any
    #: the zarr store (read-only when ``read_only``)
    store: Any
    #: path of the group inside ``store`` ("" for its root)
    path: str = ""
    #: the local filesystem path, ``None`` for URLs, stores and groups
    local: Path | None = None
    read_only: bool = True
    storage_options: dict | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        """The location as messages name it."""
        if isinstance(self.location, zarr.Group):
            return f"{self.store}/{self.path}"
        return str(self.location)

    def exists(self) -> bool:
        """Whether anything already lives at the location (see :func:`exists`)."""
        if self.local is not None:
            return self.local.exists()
        return exists(self, self.storage_options)

    def group(self, mode: str = "r") -> zarr.Group:
        """The group at the location, opened afresh (zarr caches attributes at open)."""
        return zarr.open_group(self.store, path=self.path, mode=mode)


def resolve(location: Any, *, writable: bool = False,
            storage_options: dict | None = None) -> StoreRef:
    """Resolve ``location`` once into a :class:`StoreRef`; nothing is created or written.

    A ``StoreRef`` comes back as it is (made writable when asked); a zarr group keeps its
    path inside its store. A local path that does not exist yet resolves when ``writable``
    (it is created by the first write) and raises :class:`StoreError` otherwise.
    """
    if isinstance(location, StoreRef):
        if writable and location.read_only:
            return StoreRef(location.location, location.store.with_read_only(False),
                            location.path, location.local, False, location.storage_options)
        return location
    if isinstance(location, zarr.Group):
        store = location.store
        if writable and store.read_only:
            store = store.with_read_only(False)
        return StoreRef(location, store, location.path, None, not writable, storage_options)
    store = open_store(location, mode="a" if writable else "r",
                       storage_options=storage_options)
    return StoreRef(location, store, "", local_path(location), not writable, storage_options)


def local_root(store: Any) -> Path | None:
    """The folder of a local zarr store (its objects are plain files there), else ``None``."""
    return Path(store.root) if isinstance(store, zarr.storage.LocalStore) else None


def local_path(location: Any) -> Path | None:
    """The local filesystem path of ``location`` or ``None`` for stores and URLs."""
    if isinstance(location, StoreRef):
        return location.local
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
    if isinstance(location, StoreRef):
        store = location.store
        if not read_only and location.read_only:
            store = store.with_read_only(False)
        return zarr.storage.StorePath(store, location.path) if location.path else store
    if isinstance(location, zarr.Group | zarr.Array):
        return location.store
    if not isinstance(location, str | os.PathLike):
        return location  # already a store
    path = local_path(location)
    if path is None:
        return zarr.storage.FsspecStore.from_url(
            str(location), storage_options=_remote_options(str(location), storage_options,
                                                           read_only),
            read_only=read_only)
    if path.suffix == ".zip" and read_only:
        if not path.exists():
            raise StoreError("no such file", path=path)
        return zarr.storage.ZipStore(path, mode="r")
    if read_only and not path.exists():
        raise StoreError("no such file or directory", path=path)
    return zarr.storage.LocalStore(path, read_only=read_only)


#: URL schemes served by s3fs, whose ``max_concurrency`` voxzarr sets for reading
_S3_SCHEMES = ("s3", "s3a")


def _remote_options(url: str, storage_options: dict | None, read_only: bool) -> dict | None:
    """``storage_options`` for an fsspec URL, with voxzarr's default for S3 reads.

    s3fs splits a whole-object GET into concurrent range requests when ``max_concurrency``
    is above 1 (its default is 10), and to decide it first sends a HEAD for the object's
    size: one extra round trip before every chunk. voxzarr already fetches all the chunks
    of a read at once, so reading with ``max_concurrency=1`` keeps the concurrency and drops
    the HEADs (half the requests of a full read). A value the caller gives is kept.
    """
    scheme = url.split("://", 1)[0].lower()
    if not read_only or scheme not in _S3_SCHEMES:
        return storage_options
    opts = dict(storage_options or {})
    opts.setdefault("max_concurrency", 1)
    return opts


def open_root(location: Any, *, storage_options: dict | None = None) -> zarr.Group:
    """Open ``location`` read-only as a zarr group (v2 or v3), with a clear error if it is not."""
    if isinstance(location, zarr.Group):
        return location
    if isinstance(location, StoreRef) and location.path:
        return location.group("r")
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


def base_store(store: Any) -> Any:
    """The store that holds the data of ``store``: under a ``StorePath`` and any wrapper
    store (read-only views, loggers) around it."""
    if isinstance(store, zarr.storage.StorePath):
        store = store.store
    while isinstance(store, zarr.storage.WrapperStore):
        store = store._store
    return store


def process_local(store: Any) -> bool:
    """Whether ``store`` lives in this process only (memory stores, an open zip file).

    Worker processes of a ``dask.distributed`` cluster get a *copy* of such a store, so
    writes made there would be lost: writers run their tasks in this process instead.
    """
    store = base_store(store)
    if isinstance(store, zarr.storage.MemoryStore | zarr.storage.ZipStore):
        return True
    fs = getattr(store, "fs", None)
    fs = getattr(fs, "sync_fs", fs)  # zarr wraps synchronous filesystems
    protocol = getattr(fs, "protocol", ())
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return "memory" in protocols


def check_free(location: Any, *, overwrite: bool, storage_options: dict | None = None) -> None:
    """Raise :class:`OverwriteError` when something lives at ``location`` (see
    :func:`exists`) and not ``overwrite``: what every writer checks before it writes."""
    if overwrite or not exists(location, storage_options):
        return
    path = local_path(location)
    raise OverwriteError("already exists; pass overwrite=True to replace it",
                         path=path if path is not None else getattr(location, "where",
                                                                    location))


class AtomicWrite:
    """One write that must never look complete before it is: where to write, then commit.

    Local paths: the data is written to a hidden sibling (``.partial-<id>.<name>``) and
    :meth:`commit` renames it into place (removing the old dataset, if ``overwrite``, only
    then; a ``.zip`` is packed from a staging directory first). Other stores: written in
    place; callers write the NGFF metadata last, so a partial write has no
    ``multiscales`` and does not open as an image, and :meth:`commit` has nothing to do.
    Made by :func:`begin_atomic`; :func:`atomic_target` is the same as a context manager.
    A deferred writer (``compute=False``) calls :meth:`commit` from inside its
    ``Delayed``, so the destination appears only once the data are written.
    """

    def __init__(self, location: Any, final: Path | None, staging: Any, tmp: Path | None,
                 overwrite: bool):
        self.location = location
        self.final = final
        #: where to write: the hidden sibling for local paths, else the location itself
        self.target = staging
        self._tmp = tmp
        self.overwrite = overwrite

    def commit(self) -> None:
        """Move the finished data into place (local paths); nothing for other stores."""
        if self.final is None:
            return
        path, tmp, staging = self.final, self._tmp, self.target
        assert tmp is not None
        try:
            check_free(path, overwrite=self.overwrite)  # appeared since the write began?
        except OverwriteError:
            self.abort()
            raise
        if staging != tmp:
            _zip_directory(staging, tmp)
            _remove(staging)
        move_into_place(tmp, path)

    def abort(self) -> None:
        """Remove what was written so far (local paths)."""
        if self.final is not None:
            _remove(self.target)
            assert self._tmp is not None
            _remove(self._tmp)


def begin_atomic(location: Any, *, overwrite: bool,
                 storage_options: dict | None = None) -> AtomicWrite:
    """Check the destination and choose where to write (see :class:`AtomicWrite`).

    Raises :class:`OverwriteError` when something lives at ``location`` and not
    ``overwrite``. ``storage_options`` reach the remote existence check (endpoint,
    anonymous access, ...). Local paths get their parent directory created.
    """
    check_free(location, overwrite=overwrite, storage_options=storage_options)
    path = local_path(location)
    if path is None:
        return AtomicWrite(location, None, location, None, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{uuid.uuid4().hex[:8]}.{path.name}")  # keeps the suffix
    # zip archives cannot rewrite a member, so write a directory and pack it at the end
    staging = tmp.with_name(tmp.name + ".d") if path.suffix == ".zip" else tmp
    return AtomicWrite(location, path, staging, tmp, overwrite)


@contextmanager
def atomic_target(location: Any, *, overwrite: bool,
                  storage_options: dict | None = None) -> Iterator[Any]:
    """Yield where to write so that an interrupted write never looks complete.

    :func:`begin_atomic` as a context manager: the data are moved into place when the
    block ends, and removed if it raises.
    """
    write = begin_atomic(location, overwrite=overwrite, storage_options=storage_options)
    try:
        yield write.target
    except BaseException:
        write.abort()
        raise
    try:
        write.commit()
    except BaseException:
        write.abort()
        raise


def move_into_place(src: Path, dest: Path) -> None:
    """Rename ``src`` (file or directory) to ``dest``, replacing whatever is there.

    The old ``dest`` is first renamed aside (``.old-<id>.<name>``), then ``src`` renamed in,
    then the old one removed: at every moment ``dest`` is either the old data or the new,
    whole. Both must be on one filesystem (siblings, as every caller's are).
    """
    if dest.exists():
        trash = dest.with_name(f".old-{uuid.uuid4().hex[:8]}.{dest.name}")
        os.replace(dest, trash)
        os.replace(src, dest)
        _remove(trash)
    else:
        os.replace(src, dest)


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
