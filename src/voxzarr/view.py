"""``voxzarr view``: serve a local OME-Zarr store over HTTP for web viewers.

The store is served read-only at ``http://HOST:PORT/<name>/`` (``<name>`` is the store's
folder name) with what browser viewers need: ``Access-Control-Allow-Origin: *`` on every
response (neuroglancer and vizarr pages come from other origins), single byte ranges (viewers
read shard indexes and inner chunks of sharded NGFF 0.5 stores with ``Range`` requests), JSON
content types for ``zarr.json`` / ``.zattrs`` / ``.zarray`` / ``.zgroup``, and 404 for missing
keys (zarr readers take those as fill value). Nothing outside the store is ever served.

Beside the store, ``/`` serves a small self-contained preview page (no external scripts), so
a machine without internet can still look at the image: it reads the multiscales metadata,
decodes the lowest-resolution level in the browser (raw, gzip or zlib chunks) and draws XY
and XZ maximum projections at true physical aspect, with the voxel size as text. For codecs
a browser cannot decode (blosc, zstd, sharding) it shows ``/_voxzarr/preview.png``, the same
projection rendered here by :func:`voxzarr.plot.to_pngs`.
"""

from __future__ import annotations

import html
import json
import re
import socket
import sys
import tempfile
import threading
import webbrowser
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .errors import ArgumentError, StoreError, VoxzarrError

__all__ = [
    "NEUROGLANCER",
    "PAGE",
    "PREVIEW",
    "VIEWERS",
    "VIZARR",
    "StoreServer",
    "neuroglancer_url",
    "preview_png",
    "serve",
    "store_format",
    "vizarr_url",
]

#: public viewer deployments the printed links point at
NEUROGLANCER = "https://neuroglancer-demo.appspot.com/"
VIZARR = "https://hms-dbmi.github.io/vizarr/"
#: viewer names for ``--viewer`` (``local`` is the built-in preview page)
VIEWERS = ("neuroglancer", "vizarr", "local")
#: paths of the built-in page and of the server-side preview
PAGE = "/_voxzarr/view.html"
PREVIEW = "/_voxzarr/preview.png"

_JSON_NAMES = {"zarr.json", ".zattrs", ".zarray", ".zgroup", ".zmetadata"}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_BLOCK = 1 << 20  # bytes per write when streaming a file
_PLACEHOLDER = "__VOXZARR_STORE__"


# --------------------------------------------------------------------------- viewer links
def store_format(root: str | Path) -> int:
    """Zarr format of the store at ``root``: 3 (``zarr.json``) or 2 (``.zgroup`` etc.)."""
    root = Path(root)
    if (root / "zarr.json").is_file():
        return 3
    if any((root / n).is_file() for n in (".zgroup", ".zattrs", ".zarray")):
        return 2
    raise StoreError("not a zarr store (no zarr.json, .zgroup, .zattrs or .zarray)", path=root)


def _spatial_ndim(root: Path, fmt: int) -> int:
    """Number of spatial axes of the store's first multiscale image (3 when unknown)."""
    try:
        if fmt == 3:
            attrs = json.loads((root / "zarr.json").read_text()).get("attributes", {})
            attrs = attrs.get("ome", attrs)
        else:
            attrs = json.loads((root / ".zattrs").read_text())
        axes = attrs["multiscales"][0]["axes"]
        names = [a if isinstance(a, str) else a.get("name") for a in axes]
        types = [None if isinstance(a, str) else a.get("type") for a in axes]
        return sum(t == "space" or (t is None and n in ("z", "y", "x"))
                   for n, t in zip(names, types, strict=True))
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return 3


def neuroglancer_url(store_url: str, *, zarr_format: int = 3, name: str | None = None,
                     spatial_ndim: int = 3) -> str:
    """Neuroglancer link that opens the OME-Zarr image at ``store_url`` as an image layer.

    The layer source is ``zarr3://<store_url>`` for zarr v3 (NGFF 0.5) and ``zarr://`` for
    zarr v2 (NGFF 0.4), the schemes neuroglancer reads OME-Zarr multiscales with; the state
    is the URL-encoded JSON after ``#!``. Neuroglancer takes scale and units from the
    metadata itself.

    Parameters
    ----------
    store_url
        ``http(s)://`` URL of the store's root group.
    zarr_format
        2 or 3.
    name
        Layer name (default the last part of the URL).
    spatial_ndim
        Number of spatial axes: 3 gives the four-panel layout, fewer a single XY panel.

    Returns
    -------
    str
    """
    scheme = "zarr3" if zarr_format == 3 else "zarr"
    store_url = store_url.rstrip("/")
    layer = {"type": "image", "source": f"{scheme}://{store_url}",
             "name": name or unquote(store_url.rsplit("/", 1)[-1]) or "image"}
    state = {"layers": [layer], "layout": "4panel" if spatial_ndim >= 3 else "xy"}
    text = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
    return NEUROGLANCER + "#!" + quote(text, safe=",:{}[]/")


def vizarr_url(store_url: str) -> str:
    """Vizarr link (``?source=<store_url>``) for the OME-Zarr image at ``store_url``."""
    return VIZARR + "?source=" + quote(store_url.rstrip("/"), safe=":/")


# --------------------------------------------------------------------------- preview
def preview_png(location: str | Path, level: int = 0, view: str = "xy") -> bytes:
    """PNG of a maximum projection of one level, at true physical aspect.

    Every axis other than the two of ``view`` (``t``, ``c`` and the projected spatial axis)
    is reduced with ``max``; the plane is written by :func:`voxzarr.plot.to_pngs`, which
    resamples the coarser axis so that PNG pixels are square in physical units.

    Parameters
    ----------
    location
        OME-Zarr image.
    level
        Multiscale level index.
    view
        ``"xy"`` (rows y, columns x) or ``"xz"`` (rows z, columns x).

    Returns
    -------
    bytes
        The PNG file (8-bit grayscale, full range from the plane's minimum to maximum).
    """
    from .io import open_image
    from .plot import to_pngs

    axes = {"xy": ("y", "x"), "xz": ("z", "x")}
    if view not in axes:
        raise ArgumentError(f"view must be 'xy' or 'xz', got {view!r}", field="view")
    img = open_image(location, level=level)
    row, col = axes[view]
    missing = [d for d in (row, col) if d not in img.dims]
    if missing:
        raise ArgumentError(f"the image has no {missing[0]!r} axis (dims {tuple(img.dims)})",
                            field="view")
    others = [d for d in img.dims if d not in (row, col)]
    plane = img.max(dim=others, keep_attrs=True) if others else img
    # to_pngs draws (y, x) planes of a stack along t: present this plane as one such frame
    plane = plane.transpose(row, col).rename({row: "y"} if row != "y" else {})
    with tempfile.TemporaryDirectory(prefix="voxzarr-preview-") as tmp:
        (path,) = to_pngs(plane.expand_dims("t"), tmp, dim="t", progress=False)
        return path.read_bytes()


# --------------------------------------------------------------------------- the server
class _Refused(Exception):
    """A request path that leaves the store (answered with 403)."""


class StoreServer(ThreadingHTTPServer):
    """Threaded HTTP server for one local zarr store, its preview page and preview images.

    Parameters
    ----------
    location
        Folder of the store (its root group; a group inside a bigger store works too).
    host
        Address to listen on: ``127.0.0.1`` (default) serves this machine only,
        ``0.0.0.0`` every interface; IPv6 addresses work as well.
    port
        Port; 0 picks a free one (see :attr:`port`).
    verbose
        Log every request on stderr.

    Attributes
    ----------
    root : pathlib.Path
        The served folder (resolved).
    name : str
        Its folder name; the store's keys are served under ``/<name>/``.
    zarr_format : int
        2 or 3.
    """

    daemon_threads = True  # open keep-alive connections never block shutdown

    def __init__(self, location: str | Path, host: str = "127.0.0.1", port: int = 0, *,
                 verbose: bool = False) -> None:
        if "://" in str(location):
            raise StoreError("voxzarr view serves a local folder; a remote store has a URL "
                             "of its own to give viewers", path=location)
        root = Path(location).expanduser().resolve()
        if not root.is_dir():
            raise StoreError("no such folder (voxzarr view serves folder stores)", path=root)
        self.root = root
        self.name = root.name or "store"
        self.zarr_format = store_format(root)
        self.verbose = verbose
        self._previews: dict[tuple[int, str], bytes] = {}
        self._preview_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), _Handler)
        except OSError as err:
            raise ArgumentError(f"cannot listen on {host} port {port}: "
                                f"{err.strerror or err}; --port 0 picks a free port",
                                field="--port") from None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # viewers cancel requests they no longer need (panning, zooming): not worth a traceback
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    # -- addresses
    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` as a browser on this machine reaches it."""
        host = str(self.server_address[0])
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def store_path(self) -> str:
        """URL path of the store's root (``/<name>``)."""
        return "/" + quote(self.name)

    @property
    def store_url(self) -> str:
        """URL of the store's root group, the address to give any zarr reader."""
        return self.base_url + self.store_path

    @property
    def page_url(self) -> str:
        """URL of the built-in preview page."""
        return self.base_url + "/"

    def viewer_url(self, viewer: str = "neuroglancer") -> str:
        """Link that opens the store in ``viewer`` (one of :data:`VIEWERS`)."""
        if viewer == "neuroglancer":
            return neuroglancer_url(self.store_url, zarr_format=self.zarr_format,
                                    name=self.name,
                                    spatial_ndim=_spatial_ndim(self.root, self.zarr_format))
        if viewer == "vizarr":
            return vizarr_url(self.store_url)
        if viewer == "local":
            return self.page_url
        raise ArgumentError(f"unknown viewer {viewer!r}; choose one of {VIEWERS}",
                            field="viewer")

    # -- content
    def page(self) -> bytes:
        """The preview page, pointing at this server's store."""
        text = (files("voxzarr") / "view.html").read_text(encoding="utf-8")
        return text.replace(_PLACEHOLDER, html.escape(self.store_path)).encode()

    def file_for(self, key: str) -> Path | None:
        """Path of store key ``key`` (``"0/zarr.json"``), None when absent.

        Raises ``_Refused`` for keys that would leave the store: ``..`` parts, backslashes,
        NUL bytes, and symbolic links that point outside it.
        """
        parts = key.split("/")
        if "\\" in key or "\0" in key or ".." in parts or key.startswith("/"):
            raise _Refused(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise _Refused(key)
        return path if path.is_file() else None

    def preview(self, level: int, view: str) -> bytes:
        """:func:`preview_png` of the store, computed once per (level, view)."""
        with self._preview_lock:  # one computation at a time; repeats come from the cache
            key = (level, view)
            if key not in self._previews:
                self._previews[key] = preview_png(self.root, level=level, view=view)
            return self._previews[key]


def _content_type(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if name in _JSON_NAMES or name.endswith(".json"):
        return "application/json"
    if name.endswith(".xml"):
        return "application/xml"
    return "application/octet-stream"


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a single-range ``Range`` header; None means the whole file.

    Malformed and multi-range headers are ignored (answered with the whole file, which
    RFC 9110 allows); an unsatisfiable range raises ``ValueError`` (answered with 416).
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:  # suffix range: the last N bytes
        if not last:
            return None
        n = int(last)
        if n == 0 or size == 0:
            raise ValueError(header)
        return max(0, size - n), size
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return None  # syntactically invalid: ignore
    if start >= size:
        raise ValueError(header)
    return start, stop


class _Handler(BaseHTTPRequestHandler):
    server: StoreServer
    server_version = "voxzarr"
    protocol_version = "HTTP/1.1"  # keep-alive: viewers fetch many small chunks

    # -- plumbing
    def end_headers(self) -> None:
        # on every response, errors included: a browser hides a 404 without CORS headers
        # from the page as a network error, and zarr readers need the 404
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers",
                         "Content-Length, Content-Range, Accept-Ranges, Content-Type")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, head: bool,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _text(self, status: int, message: str, head: bool,
              extra: dict[str, str] | None = None) -> None:
        self._send(status, (message + "\n").encode(), "text/plain; charset=utf-8", head,
                   extra)

    # -- methods
    def do_OPTIONS(self) -> None:  # noqa: N802 (http.server naming)
        # CORS preflight (a Range header that is not a simple one triggers it); Chrome also
        # asks before a public page may reach a server on this machine
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Range, Content-Type")
        self.send_header("Access-Control-Allow-Private-Network", "true")
        self.send_header("Access-Control-Max-Age", "86400")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self._get(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._get(head=True)

    def _get(self, head: bool) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        if path in ("/", "/index.html", PAGE):
            return self._send(200, self.server.page(), "text/html; charset=utf-8", head)
        if path == PREVIEW:
            return self._preview(url.query, head)
        prefix = "/" + self.server.name + "/"
        if not path.startswith(prefix):
            return self._text(404, f"not found: {path} (the store is at {prefix})", head)
        key = path[len(prefix):]
        try:
            file = self.server.file_for(key)
        except _Refused:
            return self._text(403, "outside the store", head)
        if file is None:
            return self._text(404, f"no key {key!r} in the store", head)
        self._file(file, key, head)

    def _file(self, file: Path, key: str, head: bool) -> None:
        size = file.stat().st_size
        try:
            span = _byte_range(self.headers.get("Range"), size)
        except ValueError:
            return self._text(416, "range not satisfiable", head,
                              {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
        start, stop = span if span is not None else (0, size)
        self.send_response(206 if span is not None else 200)
        self.send_header("Content-Type", _content_type(key))
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-cache")
        if span is not None:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.end_headers()
        if head:
            return
        with file.open("rb") as f:  # streamed: shards can be large
            f.seek(start)
            left = stop - start
            while left > 0:
                block = f.read(min(_BLOCK, left))
                if not block:
                    break
                self.wfile.write(block)
                left -= len(block)

    def _preview(self, query: str, head: bool) -> None:
        q = parse_qs(query)
        try:
            level = int(q.get("level", ["0"])[0])
            view = q.get("view", ["xy"])[0]
            if level < 0:
                raise ValueError(level)
        except ValueError:
            return self._text(400, "level must be a level index >= 0", head)
        try:
            png = self.server.preview(level, view)
        except (VoxzarrError, KeyError, IndexError) as err:
            return self._text(400, f"no preview: {err}", head)
        except Exception as err:  # a broken chunk must not kill the server; say what broke
            return self._text(500, f"preview failed: {type(err).__name__}: {err}", head)
        self._send(200, png, "image/png", head)


# --------------------------------------------------------------------------- command line
def serve(location: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
          viewer: str = "neuroglancer", open_browser: bool = False, verbose: bool = False,
          out: Callable[[str], None] | None = None) -> int:
    """Serve ``location`` until Ctrl-C, printing the store URL and viewer links.

    Parameters
    ----------
    location
        Local folder store.
    host, port
        Where to listen (see :class:`StoreServer`).
    viewer
        Which link comes first and is opened by ``open_browser``: ``"neuroglancer"``,
        ``"vizarr"`` or ``"local"`` (the built-in preview page, which needs no internet).
    open_browser
        Open that link with :mod:`webbrowser`.
    verbose
        Log every request on stderr.
    out
        Where the lines go (default: print to stdout, flushed at once so that a program
        reading them sees the URL before the first request).

    Returns
    -------
    int
        0 once stopped with Ctrl-C.
    """
    if viewer not in VIEWERS:
        raise ArgumentError(f"unknown viewer {viewer!r}; choose one of {VIEWERS}",
                            field="viewer")
    say = out or (lambda line: print(line, flush=True))
    server = StoreServer(location, host, port, verbose=verbose)
    try:
        say(f"store         {server.store_url}  ({server.root}, zarr v{server.zarr_format})")
        for name in (viewer, *(v for v in VIEWERS if v != viewer)):
            say(f"{name:<13} {server.viewer_url(name)}")
        if host in ("0.0.0.0", "::", ""):
            say("listening on every interface: from another machine, put this machine's "
                "name in place of the local address")
        say("Ctrl-C stops the server")
        if open_browser:
            # in a thread: a terminal browser would otherwise hold up serving its requests
            threading.Thread(target=webbrowser.open, args=(server.viewer_url(viewer),),
                             daemon=True).start()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()
    return 0
