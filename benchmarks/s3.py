"""Reading OME-Zarr from a local S3-compatible server: time, requests and bytes per tool.

One synthetic image (smooth signal + Poisson noise, uint16, Blosc zstd-3 + shuffle) is written
by voxzarr to a moto S3 server on localhost twice: unsharded and sharded. The server runs in a
child process behind a small WSGI layer that sleeps a fixed time before every request (so
concurrency matters, as it does against real object storage) and counts what it serves:
GETs with and without a ``Range`` header, HEADs, LISTs, response body bytes, and the most
requests in flight at once.

Each layout is read in full, as one interior chunk-sized box (one stored chunk) and as a box of
eight chunks that crosses shard edges, by:

- voxzarr through its public API, from the ``s3://`` URL with ``storage_options`` (fsspec
  / s3fs underneath, which voxzarr reads with ``max_concurrency=1``; once more with s3fs's
  own default ``max_concurrency=10``, which sends a HEAD before every whole-object GET)
  and from a ``zarr.storage.ObjectStore``
  (obstore) given as the location: ``open_image(...).values`` and
  ``open_image(...).isel(...).values``;
- zarr-python 3 on the same array through ``FsspecStore`` (s3fs) and ``ObjectStore``
  (``obstore.store.S3Store``);
- tensorstore's ``s3`` kvstore pointed at the local endpoint.

Every timing (best of ``--repeat``) includes opening (metadata reads) with fresh store
objects; counts are those of the last repeat, the in-flight peak that of the read after
opening. Tools whose library is missing are skipped with the reason printed; ``--trace``
prints every request of each case (start and end in ms, kind, key, range).
Usage::

    python benchmarks/s3.py [--latency-ms 20] [--shape 64,512,512] [--chunks 16,128,128]
        [--shards 32,256,256] [--repeat 3] [--tools voxzarr,zarr+obstore,...]
        [--cases "full,1 chunk,8 chunks"] [--trace]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _util import table  # noqa: E402

BUCKET = "bench"
REGION = "us-east-1"
#: fake credentials for the local server only (moto checks none); set in this process alone
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench-key-id", "AWS_SECRET_ACCESS_KEY": "bench-secret",
               "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
CONTROL = "/__bench__/"
KINDS = ("GET", "GET range", "HEAD", "LIST", "other")


# --------------------------------------------------------------------------- server side
class Meter:
    """WSGI middleware around moto: a fixed delay per request, and counts of what is served."""

    def __init__(self, app: Callable, latency_s: float):
        self.app, self.latency_s = app, latency_s
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.nbytes: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.t0 = time.perf_counter()
        self.log: list[tuple[float, float, str, str, str]] = []

    def stats(self, log: bool = False) -> dict[str, Any]:
        with self.lock:
            out = {"requests": dict(self.requests), "bytes": dict(self.nbytes),
                   "max_in_flight": self.max_in_flight}
            if log:
                out["log"] = sorted(self.log)
            return out

    @staticmethod
    def kind(environ: dict[str, Any]) -> str:
        method = environ["REQUEST_METHOD"]
        key = environ.get("PATH_INFO", "").lstrip("/").partition("/")[2]
        query = environ.get("QUERY_STRING", "")
        if method == "HEAD":
            return "HEAD"
        if method == "GET" and (not key or "list-type" in query or "prefix=" in query):
            return "LIST"
        if method == "GET":
            return "GET range" if environ.get("HTTP_RANGE") else "GET"
        return "other"

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL):  # the benchmark's own calls: no delay, not counted
            with self.lock:
                if path.endswith("reset"):
                    self.reset()
                elif path.endswith("peak"):  # from now on: the read phase's peak
                    self.max_in_flight = self.in_flight
            body = json.dumps(self.stats("log" in environ.get("QUERY_STRING", ""))).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        kind = self.kind(environ)
        start = time.perf_counter()
        with self.lock:
            self.requests[kind] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.latency_s)
            result = self.app(environ, start_response)
            try:
                parts = [bytes(p) for p in result]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            with self.lock:
                self.in_flight -= 1
        with self.lock:
            self.nbytes[kind] += sum(len(p) for p in parts)
            self.log.append((round((start - self.t0) * 1000, 1),
                             round((time.perf_counter() - self.t0) * 1000, 1), kind,
                             path.partition(f"/{BUCKET}/")[2] or path,
                             environ.get("HTTP_RANGE", "") or environ.get("QUERY_STRING", "")))
        return parts


def serve(latency_ms: float) -> None:
    """Run moto behind :class:`Meter` on a free port; print the port, serve until killed."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = Meter(DomainDispatcherApplication(create_backend_app), latency_ms / 1000)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


class Server:
    """The metered moto server in a child process, and its control calls."""

    def __init__(self, latency_ms: float):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", "--latency-ms",
                                      str(latency_ms)], stdout=subprocess.PIPE, text=True)
        port = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not port.isdigit():
            self.stop()
            raise SystemExit("the moto server did not start")
        self.endpoint = f"http://127.0.0.1:{port}"
        req = urllib.request.Request(f"{self.endpoint}/{BUCKET}", method="PUT")
        urllib.request.urlopen(req).read()  # create the bucket

    def control(self, what: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}{CONTROL}{what}") as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- tools
def _s3store(endpoint: str, prefix: str, read_only: bool = True) -> Any:
    import zarr.storage
    from obstore.store import S3Store

    # allow_http as a client option: as a keyword, obstore 0.12 cannot pickle the store
    store = S3Store(BUCKET, prefix=prefix, endpoint=endpoint, region=REGION,
                    client_options={"allow_http": True})
    return zarr.storage.ObjectStore(store, read_only=read_only)


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _isel(box: tuple[slice, ...] | None) -> dict[str, slice]:
    return {} if box is None else dict(zip("zyx", box, strict=True))


def tools(endpoint: str) -> dict[str, tuple[Callable, Callable] | str]:
    """``{name: (open(layout), read(handle, box))}``, or ``{name: reason}`` to skip it."""
    have = {m: _have(m) for m in ("s3fs", "obstore", "tensorstore")}
    so = {"endpoint_url": endpoint}
    out: dict[str, tuple[Callable, Callable] | str] = {}

    def vz_read(img: Any, box: Any) -> Any:
        return (img if box is None else img.isel(_isel(box))).values

    def zarr_read(arr: Any, box: Any) -> Any:
        return arr[...] if box is None else arr[box]

    def vz_fsspec(layout: str) -> Any:
        import voxzarr as vz

        return vz.open_image(f"s3://{BUCKET}/{layout}.ome.zarr", storage_options=so)

    def vz_fsspec_mc10(layout: str) -> Any:
        import voxzarr as vz

        return vz.open_image(f"s3://{BUCKET}/{layout}.ome.zarr",
                             storage_options={**so, "max_concurrency": 10})

    def vz_obstore(layout: str) -> Any:
        import voxzarr as vz

        return vz.open_image(_s3store(endpoint, f"{layout}.ome.zarr"))

    def zarr_fsspec(layout: str) -> Any:
        import zarr
        import zarr.storage

        store = zarr.storage.FsspecStore.from_url(f"s3://{BUCKET}/{layout}.ome.zarr/0",
                                                  storage_options=so, read_only=True)
        return zarr.open_array(store, mode="r")

    def zarr_obstore(layout: str) -> Any:
        import zarr

        return zarr.open_array(_s3store(endpoint, f"{layout}.ome.zarr/0"), mode="r")

    def ts_open(layout: str) -> Any:
        import tensorstore as ts

        spec = {"driver": "zarr3",
                "kvstore": {"driver": "s3", "bucket": BUCKET, "path": f"{layout}.ome.zarr/0/",
                            "endpoint": endpoint, "aws_region": REGION,
                            "aws_credentials": {"type": "environment"}}}
        return ts.open(spec, read=True, context=ts.Context()).result()

    def ts_read(t: Any, box: Any) -> Any:
        return (t if box is None else t[box]).read().result()

    no_s3fs = "s3fs is not installed"
    out["voxzarr"] = (vz_fsspec, vz_read) if have["s3fs"] else no_s3fs
    out["voxzarr (max_concurrency=10)"] = ((vz_fsspec_mc10, vz_read) if have["s3fs"]
                                           else no_s3fs)
    out["voxzarr+obstore"] = ((vz_obstore, vz_read) if have["obstore"]
                              else "obstore is not installed")
    out["zarr+fsspec"] = (zarr_fsspec, zarr_read) if have["s3fs"] else no_s3fs
    out["zarr+obstore"] = ((zarr_obstore, zarr_read) if have["obstore"]
                           else "obstore is not installed")
    out["tensorstore"] = ((ts_open, ts_read) if have["tensorstore"]
                          else "tensorstore is not installed")
    return out


# --------------------------------------------------------------------------- main
def _image(shape: tuple[int, ...]) -> Any:
    import numpy as np

    rng = np.random.default_rng(0)
    z, y, x = (np.linspace(0, 6, n, dtype=np.float32) for n in shape)
    signal = 300 + 200 * np.sin(z)[:, None, None] * np.cos(y)[None, :, None] * np.sin(x)
    return rng.poisson(signal).astype(np.uint16)


def _write(data: Any, endpoint: str, chunks: tuple[int, ...],
           layouts: dict[str, tuple[int, ...] | None]) -> None:
    import voxzarr as vz

    img = vz.from_array(data, "zyx", voxel_size={"z": 2.0, "y": 0.5, "x": 0.5},
                        units="micrometer")
    for name, shards in layouts.items():
        location: Any = f"s3://{BUCKET}/{name}.ome.zarr"
        opts: dict[str, Any] | None = {"endpoint_url": endpoint}
        if not _have("s3fs"):  # write through obstore instead
            location, opts = _s3store(endpoint, f"{name}.ome.zarr", read_only=False), None
        vz.to_ome_zarr(img, location, chunks=chunks, shards=shards, storage_options=opts,
                       overwrite=True, progress=False)


def _boxes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> dict[str, Any]:
    """Full read; one interior stored chunk; eight chunks across the middle of each axis
    (so across shard edges when shards are twice the chunk, as by default)."""
    one = tuple(slice(c, 2 * c) for c in chunks)
    mid = tuple(slice(n // 2 - c // 2, n // 2 + c // 2) for n, c in zip(shape, chunks,
                                                                        strict=True))
    return {"full": None, "1 chunk": one, "8 chunks": mid}


def _measure(server: Server, opener: Callable, reader: Callable, layout: str, box: Any,
             expected: Any, repeat: int, trace: bool = False) -> dict[str, Any]:
    import numpy as np

    best, best_open = float("inf"), 0.0
    for _ in range(repeat):
        server.control("reset")
        t0 = time.perf_counter()
        handle = opener(layout)
        t_open = time.perf_counter() - t0
        opened = server.control("peak")
        t0 = time.perf_counter()
        got = reader(handle, box)
        t_read = time.perf_counter() - t0
        stats = server.control("stats?log" if trace else "stats")
        if not np.array_equal(np.asarray(got), expected):
            raise AssertionError(f"wrong values read ({layout}, {box})")
        if t_open + t_read < best:
            best, best_open = t_open + t_read, t_open
    if trace:  # the last repeat's requests: start and end (ms), kind, key, range or query
        print(f"  open {t_open * 1000:.0f} ms, read {t_read * 1000:.0f} ms")
        for entry in stats["log"]:
            print("  ", *entry)
    req = Counter(stats["requests"])
    return {"seconds": f"{best:.3f}", "open s": f"{best_open:.3f}", "requests": sum(req.values()),
            "of which open": sum(opened["requests"].values()),
            "GET": req["GET"], "GET range": req["GET range"], "HEAD": req["HEAD"],
            "LIST": req["LIST"], "MiB fetched": f"{sum(stats['bytes'].values()) / 2**20:.2f}",
            "max in flight (read)": stats["max_in_flight"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--shape", default="64,512,512")
    ap.add_argument("--chunks", default="16,128,128")
    ap.add_argument("--shards", default="32,256,256")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default=None, help="comma-separated subset of the tool names")
    ap.add_argument("--cases", default=None, help="comma-separated subset of the cases")
    ap.add_argument("--trace", action="store_true", help="print each case's requests")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.latency_ms)
        return
    for name in _CLEARED:
        os.environ.pop(name, None)
    os.environ.update(CREDENTIALS)
    shape = tuple(int(v) for v in args.shape.split(","))
    chunks = tuple(int(v) for v in args.chunks.split(","))
    layouts = {"unsharded": None, "sharded": tuple(int(v) for v in args.shards.split(","))}
    data = _image(shape)
    server = Server(args.latency_ms)
    try:
        t0 = time.perf_counter()
        _write(data, server.endpoint, chunks, layouts)
        print(f"wrote {data.nbytes / 2**20:.0f} MiB twice in {time.perf_counter() - t0:.1f} s; "
              f"{args.latency_ms:g} ms per request; {os.cpu_count()} cores", flush=True)
        avail = tools(server.endpoint)
        wanted = args.tools.split(",") if args.tools else list(avail)
        rows = []
        for tool in wanted:
            entry = avail.get(tool, "unknown tool")
            if isinstance(entry, str):
                print(f"skipping {tool}: {entry}", flush=True)
                continue
            opener, reader = entry
            for layout in layouts:
                for case, box in _boxes(shape, chunks).items():
                    if args.cases and case not in args.cases.split(","):
                        continue
                    expected = data if box is None else data[box]
                    try:
                        row = _measure(server, opener, reader, layout, box, expected,
                                       args.repeat, args.trace)
                    except Exception as err:
                        row = {"seconds": f"error: {type(err).__name__}: {err}"[:100]}
                    row = {"tool": tool, "layout": layout, "case": case, **row}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        server.stop()
    cols = ["tool", "layout", "case", "seconds", "open s", "requests", "of which open", "GET",
            "GET range", "HEAD", "LIST", "MiB fetched", "max in flight (read)"]
    print()
    print(f"shape {shape} uint16, chunks {chunks}, shards {layouts['sharded']}, "
          f"{args.latency_ms:g} ms per request, best of {args.repeat}")
    print(table(rows, cols))


if __name__ == "__main__":
    main()
