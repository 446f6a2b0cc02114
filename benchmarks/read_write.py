"""Write and read one OME-Zarr level: voxzarr vs tensorstore, zarr-python and zarr + zarrs.

Same data, chunks and codec (Blosc zstd-3 + byte shuffle, zarr v3) for every tool; each case
runs in a fresh subprocess pinned to the first N cores (``taskset``) for every N asked, tools
round robin, best of ``--repeat`` runs. voxzarr's reads are timed through its public API:
``open_image(p).values``, ``open_image(p).compute()``, a region ``isel(...).values`` and
``xr.open_dataset(p, engine="voxzarr")``; ``--shards`` also writes and reads a sharded store.
Usage::

    python benchmarks/read_write.py [--shape 128,1024,1024] [--chunks 32,256,256]
        [--shards 64,512,512] [--threads 1 4 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import table  # noqa: E402

PREP = """
import time, shutil, numpy as np
shape = {shape}; chunks = {chunks}; shards = {shards}; out = {out!r}
data = np.load({src!r})
region = tuple(slice(n // 4, n // 4 + max(c, n // 4)) for n, c in zip(shape, chunks))
def best(f, n={repeat}):
    t = 1e9
    for _ in range(n):
        t0 = time.perf_counter(); r = f(); t = min(t, time.perf_counter() - t0)
    return t, r
def fresh():
    shutil.rmtree(out, ignore_errors=True)
"""

CASES = {
    "voxzarr": """
import voxzarr as vz, xarray as xr
img = vz.from_array(data, "zyx", voxel_size=1.0)
def w():
    fresh(); vz.to_ome_zarr(img, out, chunks=chunks, shards=shards, progress=False)
write_s, _ = best(w)
read_s, back = best(lambda: vz.open_image(out).values)
assert (back == data).all()
compute_s, _ = best(lambda: vz.open_image(out).compute())
region_s, r = best(lambda: vz.open_image(out)[region].values)
assert (r == data[region]).all()
from voxzarr.backend import VoxzarrBackendEntrypoint as engine  # the class: no install needed
xr_s, _ = best(lambda: xr.open_dataset(out, engine=engine)["image"].values)
RESULT = dict(write_s=write_s, read_s=read_s, compute_s=compute_s, region_s=region_s,
              xr_engine_s=xr_s)
""",
    "tensorstore": """
import tensorstore as ts
codecs = [{{"name": "blosc", "configuration": {{"cname": "zstd", "clevel": 3,
           "shuffle": "shuffle", "typesize": 2}}}}]
if shards:
    codecs = [{{"name": "sharding_indexed", "configuration": {{"chunk_shape": list(chunks),
               "codecs": [{{"name": "bytes", "configuration": {{"endian": "little"}}}}] + codecs,
               "index_codecs": [{{"name": "bytes", "configuration": {{"endian": "little"}}}},
                                {{"name": "crc32c"}}]}}}}]
spec = {{"driver": "zarr3", "kvstore": {{"driver": "file", "path": out + "/0"}}}}
meta = {{"shape": list(shape), "data_type": str(data.dtype), "codecs": codecs,
        "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape":
                        list(shards or chunks)}}}}}}
def w():
    fresh()
    t = ts.open({{**spec, "metadata": meta, "create": True}}).result()
    t.write(data).result()
write_s, _ = best(w)
read_s, back = best(lambda: ts.open(spec).result().read().result())
assert (back == data).all()
region_s, _ = best(lambda: ts.open(spec).result()[region].read().result())
RESULT = dict(write_s=write_s, read_s=read_s, region_s=region_s)
""",
    "zarr": """
import zarr
from zarr.codecs import BloscCodec
if {zarrs}:
    zarr.config.set({{"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}})
def w():
    fresh()
    a = zarr.create_array(out + "/0", shape=shape, dtype=data.dtype, chunks=chunks,
                          shards=shards, compressors=BloscCodec(cname="zstd", clevel=3,
                                                                shuffle="shuffle"))
    a[...] = data
write_s, _ = best(w)
read_s, back = best(lambda: zarr.open_array(out + "/0")[...])
assert (back == data).all()
region_s, _ = best(lambda: zarr.open_array(out + "/0")[region])
RESULT = dict(write_s=write_s, read_s=read_s, region_s=region_s)
""",
}


def run(tool: str, code: str, cores: int) -> dict:
    import subprocess

    proc = subprocess.run(["taskset", "-c", f"0-{cores - 1}", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="128,1024,1024")
    ap.add_argument("--chunks", default="32,256,256")
    ap.add_argument("--shards", default=None, help="also a sharded store of this shard shape")
    ap.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default="voxzarr,tensorstore,zarr,zarr+zarrs")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    chunks = tuple(int(v) for v in args.chunks.split(","))
    import numpy as np

    rng = np.random.default_rng(0)
    z, y, x = (np.linspace(0, 6, n, dtype=np.float32) for n in shape)
    signal = 1000 + 500 * np.sin(z)[:, None, None] * np.cos(y)[None, :, None] * np.sin(x)
    data = rng.poisson(signal).astype(np.uint16)
    mb = data.nbytes / 1e6
    layouts = [None] + ([tuple(int(v) for v in args.shards.split(","))] if args.shards else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = f"{tmp}/src.npy"
        np.save(src, data)
        del data
        for shards in layouts:
            for n in args.threads:
                for tool in args.tools.split(","):
                    body = CASES["zarr" if tool.startswith("zarr") else tool].format(
                        zarrs=tool == "zarr+zarrs")
                    code = PREP.format(shape=shape, chunks=chunks, shards=shards, src=src,
                                       out=f"{tmp}/{tool}.ome.zarr", repeat=args.repeat)
                    r = run(tool, code + body + "\nimport json; print(json.dumps(RESULT))", n)
                    row = {"layout": "sharded" if shards else "chunks", "threads": n,
                           "tool": tool, **{k: round(v, 4) if isinstance(v, float) else v
                                            for k, v in r.items()}}
                    for k in ("write", "read"):
                        if isinstance(r.get(f"{k}_s"), float):
                            row[f"{k}_MBps"] = round(mb / r[f"{k}_s"])
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(table(rows, ["layout", "threads", "tool", "write_s", "write_MBps", "read_s",
                       "read_MBps", "compute_s", "region_s", "xr_engine_s", "error"]))


if __name__ == "__main__":
    main()
