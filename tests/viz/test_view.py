"""voxzarr view: the HTTP server, the viewer links, and the preview page in a real browser.

The browser tests drive the system's Chromium headless (``--dump-dom`` and ``--screenshot``
in one run) against a synthetic image holding one bright box at a known physical place,
and check the page's voxel-size text and where the box lands in the screenshot, so drawing
voxels square instead of at their physical size fails. They skip, saying why, where no
Chromium runs (``make test`` installs it when it can).
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

import voxzarr as vz
from voxzarr.cli import main
from voxzarr.view import (
    NEUROGLANCER,
    PREVIEW,
    VIZARR,
    StoreServer,
    neuroglancer_url,
    preview_png,
    vizarr_url,
)

VOXEL = {"z": 2.0, "y": 0.5, "x": 0.25}
SHAPE = (16, 32, 64)  # extents z 32, y 16, x 16 micrometer
#: the bright box, in micrometers from the image's lower edge: [lo, hi) per axis
BOX = {"z": (8.0, 16.0), "y": (4.0, 8.0), "x": (10.0, 14.0)}
EXTENT = {d: n * VOXEL[d] for d, n in zip("zyx", SHAPE, strict=True)}


def _image(channels: int = 0):
    """The test image; with ``channels``, a ``czyx`` image whose box is in the last channel."""
    a = np.zeros(SHAPE, "uint16")
    idx = tuple(slice(round(BOX[d][0] / VOXEL[d]), round(BOX[d][1] / VOXEL[d])) for d in "zyx")
    a[idx] = 1000
    if channels:
        a = np.stack([np.zeros_like(a)] * (channels - 1) + [a])
    return vz.from_array(a, dims="czyx" if channels else "zyx", voxel_size=VOXEL, units="um")


def _recode(store: Path, codec: str) -> None:
    """Re-encode every chunk of an uncompressed store with gzip or zlib (as other writers do)."""
    compress = {"gzip": gzip.compress, "zlib": zlib.compress}[codec]
    for meta in list(store.rglob("zarr.json")) + list(store.rglob(".zarray")):
        d = json.loads(meta.read_text())
        if meta.name == "zarr.json":
            if d.get("node_type") != "array":
                continue
            d["codecs"] = [*d["codecs"], {"name": "gzip", "configuration": {"level": 5}}]
            chunks = [p for p in (meta.parent / "c").rglob("*") if p.is_file()]
        else:
            d["compressor"] = {"id": codec, "level": 5}
            chunks = [p for p in meta.parent.rglob("*")
                      if p.is_file() and not p.name.startswith(".")]
        meta.write_text(json.dumps(d))
        for c in chunks:
            c.write_bytes(compress(c.read_bytes()))


def _store(tmp_path: Path, version: str = "0.5", codec: str = "raw", *, pyramid: bool = True,
           chunks=8, shards=None, channels: int = 0, name: str = "cells.ome.zarr") -> Path:
    path = tmp_path / name
    compressor = "zstd" if codec == "blosc" else None
    _image(channels).vox.to_ome_zarr(path, version=version, pyramid=pyramid, chunks=chunks,
                                     shards=shards, compressor=compressor)
    if codec in ("gzip", "zlib"):
        _recode(path, codec)
        np.testing.assert_array_equal(vz.open_image(path).values, _image(channels).values)
    return path


@contextmanager
def _serving(path: Path) -> Iterator[StoreServer]:
    server = StoreServer(path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _request(server: StoreServer, path: str, method: str = "GET",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw request (the path is sent exactly as given, never normalised)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- links
def test_neuroglancer_and_vizarr_links():
    url = neuroglancer_url("http://127.0.0.1:8000/cells.ome.zarr", zarr_format=3)
    assert url.startswith(NEUROGLANCER + "#!")
    state = json.loads(unquote(url.split("#!", 1)[1]))
    assert state["layers"] == [{"type": "image", "name": "cells.ome.zarr",
                                "source": "zarr3://http://127.0.0.1:8000/cells.ome.zarr"}]
    assert state["layout"] == "4panel"
    assert " " not in url and '"' not in url
    v2 = json.loads(unquote(neuroglancer_url("http://h:1/a b.zarr/", zarr_format=2,
                                             spatial_ndim=2).split("#!", 1)[1]))
    assert v2["layers"][0]["source"] == "zarr://http://h:1/a b.zarr"
    assert v2["layout"] == "xy"
    assert vizarr_url("http://127.0.0.1:8000/cells.ome.zarr/") == (
        VIZARR + "?source=http://127.0.0.1:8000/cells.ome.zarr")


def test_server_urls(tmp_path):
    path = _store(tmp_path, "0.4", pyramid=False)
    with _serving(path) as server:
        assert server.store_url == f"http://127.0.0.1:{server.port}/cells.ome.zarr"
        assert server.zarr_format == 2
        assert server.viewer_url("local") == f"http://127.0.0.1:{server.port}/"
        ng = json.loads(unquote(server.viewer_url("neuroglancer").split("#!", 1)[1]))
        assert ng["layers"][0]["source"] == "zarr://" + server.store_url
        assert server.viewer_url("vizarr") == vizarr_url(server.store_url)


# --------------------------------------------------------------------------- HTTP
@pytest.mark.parametrize("version, key", [("0.5", "zarr.json"), ("0.5", "0/zarr.json"),
                                          ("0.4", ".zattrs"), ("0.4", ".zgroup"),
                                          ("0.4", "0/.zarray")])
def test_metadata_served_as_json_with_cors(tmp_path, version, key):
    path = _store(tmp_path, version, pyramid=False)
    with _serving(path) as server:
        status, headers, body = _request(server, f"/cells.ome.zarr/{key}")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["access-control-allow-origin"] == "*"
    assert body == (path / key).read_bytes()
    json.loads(body)


def test_range_requests(tmp_path):
    path = _store(tmp_path, "0.5", "blosc", pyramid=False, chunks=16, shards=(16, 32, 64))
    key = "0/c/0/0/0"  # one shard: viewers read its index and chunks by byte range
    data = (path / key).read_bytes()
    size = len(data)
    url = f"/cells.ome.zarr/{key}"
    with _serving(path) as server:
        status, headers, body = _request(server, url)
        assert (status, body, headers["accept-ranges"]) == (200, data, "bytes")
        assert headers["content-type"] == "application/octet-stream"
        for rng, (lo, hi) in [("bytes=2-5", (2, 6)), ("bytes=3-", (3, size)),
                              (f"bytes=-{size // 3}", (size - size // 3, size)),
                              (f"bytes=5-{size + 100}", (5, size)),
                              (f"bytes=-{size + 10}", (0, size))]:
            status, headers, body = _request(server, url, headers={"Range": rng})
            assert status == 206, rng
            assert body == data[lo:hi], rng
            assert headers["content-range"] == f"bytes {lo}-{hi - 1}/{size}", rng
            assert headers["content-length"] == str(hi - lo)
            assert headers["access-control-allow-origin"] == "*"
        status, headers, body = _request(server, url, headers={"Range": f"bytes={size}-"})
        assert status == 416
        assert headers["content-range"] == f"bytes */{size}"
        # several ranges, or nonsense, get the whole file (allowed by RFC 9110)
        for rng in ("bytes=0-1,4-5", "lines=1-2", "bytes=5-2"):
            status, _, body = _request(server, url, headers={"Range": rng})
            assert (status, body) == (200, data), rng
        status, headers, body = _request(server, url, method="HEAD")
        assert (status, headers["content-length"], body) == (200, str(size), b"")
        status, headers, body = _request(server, url, method="HEAD",
                                         headers={"Range": "bytes=0-9"})
        assert (status, headers["content-length"], body) == (206, "10", b"")


def test_missing_keys_are_404_with_cors(tmp_path):
    path = _store(tmp_path, "0.5", pyramid=False)
    with _serving(path) as server:
        for p in ("/cells.ome.zarr/0/c/9/9/9", "/cells.ome.zarr/nope.json", "/other/zarr.json",
                  "/cells.ome.zarr/0", "/cells.ome.zarr/", "/_voxzarr/nothing"):
            status, headers, _ = _request(server, p)
            assert status == 404, p
            assert headers["access-control-allow-origin"] == "*", p


def test_refuses_paths_outside_the_store(tmp_path):
    path = _store(tmp_path, "0.5", pyramid=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (path / "link.txt").symlink_to(secret)
    (path / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    with _serving(path) as server:
        for p in ("/cells.ome.zarr/../secret.txt", "/cells.ome.zarr/%2e%2e/secret.txt",
                  "/cells.ome.zarr/..%2fsecret.txt", "/cells.ome.zarr/0/../../secret.txt",
                  "/cells.ome.zarr/link.txt", "/cells.ome.zarr/linkdir/secret.txt",
                  "/cells.ome.zarr/..%5csecret.txt", "/cells.ome.zarr//etc/passwd",
                  "/../secret.txt", "/secret.txt", "/etc/passwd"):
            status, _, body = _request(server, p)
            assert status in (403, 404), p
            assert b"do not serve" not in body, p
        assert _request(server, "/cells.ome.zarr/../secret.txt")[0] == 403


def test_cors_preflight(tmp_path):
    path = _store(tmp_path, "0.5", pyramid=False)
    with _serving(path) as server:
        status, headers, body = _request(
            server, "/cells.ome.zarr/0/c/0/0/0", method="OPTIONS",
            headers={"Origin": "https://neuroglancer-demo.appspot.com",
                     "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "range"})
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == "*"
    assert "GET" in headers["access-control-allow-methods"]
    assert "range" in headers["access-control-allow-headers"].lower()
    assert headers["access-control-allow-private-network"] == "true"


def test_zarr_reads_the_served_store(tmp_path):
    """A zarr reader going through the server gets the same image (sharded, blosc)."""
    import zarr

    path = _store(tmp_path, "0.5", "blosc", pyramid=False, chunks=8, shards=(16, 16, 32))
    with _serving(path) as server:
        arr = zarr.open_array(f"{server.store_url}/0", mode="r")
        np.testing.assert_array_equal(arr[:], _image().values)


# --------------------------------------------------------------------------- preview
def _bright_span(pixels: np.ndarray, axis: int) -> tuple[int, int]:
    """First and one-past-last index along ``axis`` (0 rows, 1 columns) above half range."""
    hit = np.flatnonzero((pixels > 127).any(axis=1 - axis))
    assert hit.size, "no bright pixels"
    return int(hit[0]), int(hit[-1]) + 1


def _check_picture(pixels: np.ndarray, row: str, tol: float) -> None:
    """The box of ``BOX`` where the physical geometry puts it, in a (row, x) picture."""
    rows, cols = pixels.shape
    # physical aspect: rows / cols equals extent(row) / extent(x)
    assert rows / cols == pytest.approx(EXTENT[row] / EXTENT["x"], abs=1.5 / cols)
    for axis, dim, n in ((0, row, rows), (1, "x", cols)):
        lo, hi = _bright_span(pixels, axis)
        px = n / EXTENT[dim]
        assert lo == pytest.approx(BOX[dim][0] * px, abs=tol), (dim, lo, hi)
        assert hi == pytest.approx(BOX[dim][1] * px, abs=tol), (dim, lo, hi)


@pytest.mark.parametrize("view, row", [("xy", "y"), ("xz", "z")])
def test_preview_png_at_physical_aspect(tmp_path, view, row):
    path = _store(tmp_path, "0.5", "blosc", pyramid=False)
    pixels = np.asarray(Image.open(io.BytesIO(preview_png(path, 0, view))))
    assert pixels.dtype == np.uint8 and pixels.ndim == 2
    _check_picture(pixels, row, tol=1)


def test_preview_endpoint(tmp_path):
    path = _store(tmp_path, "0.4", "blosc")
    levels = len(vz.open_multiscale(path).children)
    with _serving(path) as server:
        status, headers, body = _request(server, f"{PREVIEW}?level={levels - 1}&view=xz")
        assert (status, headers["content-type"]) == (200, "image/png")
        _check_picture(np.asarray(Image.open(io.BytesIO(body))), "z", tol=1.5)
        assert _request(server, f"{PREVIEW}?level=99")[0] == 400
        assert _request(server, f"{PREVIEW}?level=x")[0] == 400
        assert _request(server, f"{PREVIEW}?view=zy")[0] == 400


# --------------------------------------------------------------------------- command line
def test_view_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["view", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for word in ("--port", "--host", "--open", "--viewer", "neuroglancer", "vizarr",
                 "Ctrl-C", "Access-Control-Allow-Origin"):
        assert word in out, word


def test_view_command_serves_until_ctrl_c(tmp_path):
    path = _store(tmp_path, "0.5", pyramid=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxzarr.cli", "view", str(path), "--port", "0",
         "--viewer", "vizarr"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C must reach it even where the test runner ignores SIGINT (background jobs)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        text = "\n".join(lines)
        store = re.search(r"^store\s+(http://127\.0\.0\.1:\d+/cells\.ome\.zarr)\s", text, re.M)
        assert store, text
        assert lines[1].startswith("vizarr ") and VIZARR in lines[1], text  # chosen first
        assert re.search(r"^neuroglancer\s+" + re.escape(NEUROGLANCER) + "#!", text, re.M)
        assert re.search(r"^local\s+http://127\.0\.0\.1:\d+/$", text, re.M)
        with urllib.request.urlopen(store.group(1) + "/zarr.json", timeout=30) as r:
            assert json.load(r)["attributes"]["ome"]["version"] == "0.5"
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in err
    assert "Traceback" not in err


def test_view_open_uses_webbrowser(tmp_path, monkeypatch, capsys):
    path = _store(tmp_path, "0.5", pyramid=False)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    # stand in for Ctrl-C as soon as the server would start serving
    monkeypatch.setattr(StoreServer, "serve_forever",
                        lambda self, *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["view", str(path), "--port", "0", "--open", "--viewer", "local"]) == 0
    deadline = time.monotonic() + 10
    while not opened and time.monotonic() < deadline:
        time.sleep(0.05)
    out = capsys.readouterr().out
    local = re.search(r"^local\s+(\S+)$", out, re.M).group(1)
    assert opened == [local]


def test_view_errors(tmp_path, capsys):
    assert main(["view", str(tmp_path / "missing.ome.zarr"), "--port", "0"]) == 1
    assert "missing.ome.zarr" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["view", str(tmp_path / "empty"), "--port", "0"]) == 1
    assert "not a zarr store" in capsys.readouterr().err
    path = _store(tmp_path, "0.5", pyramid=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["view", str(path), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port}" in err and "--port 0" in err


# --------------------------------------------------------------------------- browser
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            ok = subprocess.run([exe, "--version"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ok.returncode == 0:
            return exe
    reason = ("no Chromium found (apt-get install chromium; `make test` installs it when run "
              "as root): the preview page is not checked in a browser")
    print(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


def _render(exe: str, url: str, tmp: Path) -> tuple[str, np.ndarray]:
    """DOM after the page's scripts ran, and a screenshot (grayscale), from one headless run."""
    shot = tmp / "shot.png"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1",
           f"--user-data-dir={tmp / 'profile'}", "--window-size=800,700",
           # virtual time waits for network loads, so the page finishes before the dump
           "--virtual-time-budget=30000", "--dump-dom", f"--screenshot={shot}", url]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                         env={**os.environ, "LANG": "C.UTF-8"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.is_file(), run.stderr[-2000:]
    return run.stdout, np.asarray(Image.open(shot).convert("L"))


def _text(dom: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert m, f"no #{element_id} in the page"
    return m.group(1)


def _rect(dom: str, element_id: str) -> tuple[int, int, int, int]:
    m = re.search(rf'<canvas[^>]*id="{element_id}"[^>]*data-rect="([\d,.-]+)"', dom)
    assert m, f"no drawn canvas #{element_id} in the page"
    left, top, width, height = (int(v) for v in m.group(1).split(","))
    return left, top, width, height


@pytest.mark.parametrize("version, codec, pyramid, chunks, shards, channels, mode", [
    ("0.5", "raw", True, 8, None, 0, "browser"),
    ("0.5", "gzip", False, (5, 6, 7), None, 0, "browser"),  # 240 chunks, partial edge chunks
    ("0.4", "zlib", True, 8, None, 2, "browser"),           # czyx: maximum over c too
    ("0.5", "blosc", True, 8, (16, 16, 16), 0, "preview"),  # sharded: drawn by the server
    ("0.4", "blosc", True, 8, None, 2, "preview"),
])
def test_preview_page_in_chromium(chromium, tmp_path, version, codec, pyramid, chunks,
                                  shards, channels, mode):
    if channels:
        chunks = (1, chunks, chunks, chunks)
    path = _store(tmp_path, version, codec, pyramid=pyramid, chunks=chunks, shards=shards,
                  channels=channels)
    tree = vz.open_multiscale(path)
    lowest = vz.open_image(path, level=len(tree.children) - 1)
    with _serving(path) as server:
        dom, shot = _render(chromium, server.page_url, tmp_path)
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-status="ready"' in body, (_text(dom, "error"), body)
    assert f'data-mode="{mode}"' in body
    # the physical scale, as text: level 0's voxel size, then the level drawn
    assert _text(dom, "scale") == "voxel size z 2 µm, y 0.5 µm, x 0.25 µm"
    level = _text(dom, "level")
    size = ", ".join(f"{d} {v:g} µm" for d, v in lowest.vox.voxel_size.items() if d != "c")
    assert level.endswith(f"voxel size {size}"), level
    assert f"level {len(tree.children) - 1} of {len(tree.children)}" in level
    over = "c, " if channels else ""
    assert f"XY: maximum over {over}z<" in dom and f"XZ: maximum over {over}y<" in dom
    # the pictures: the box where its physical position puts it, on a black background
    for element_id, row in (("view-xy", "y"), ("view-xz", "z")):
        left, top, width, height = _rect(dom, element_id)
        pixels = shot[top:top + height, left:left + width]
        assert pixels.shape == (height, width)
        scale = width / EXTENT["x"]  # screen pixels per micrometer
        cy = int((BOX[row][0] + BOX[row][1]) / 2 * scale)
        cx = int((BOX["x"][0] + BOX["x"][1]) / 2 * scale)
        assert pixels[cy, cx] > 200, element_id  # inside the box: bright
        assert pixels[2, 2] < 30 and pixels[-3, -3] < 30, element_id  # outside: dark
        # one coarse voxel of slack: the server's preview interpolates its finer rows
        coarsest = max(v for d, v in lowest.vox.voxel_size.items() if d != "c")
        _check_picture(pixels, row, tol=max(2.0, 0.5 * scale * coarsest))
