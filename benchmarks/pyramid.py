"""Pyramid writing, side by side: voxzarr vs ome-zarr-py vs ngff-zarr vs multiscale-spatial-image.

Each tool runs in its own subprocess (so peak RSS is its own) on the same deterministic
uint16 volume held in memory, writes an OME-Zarr (or xarray-zarr for multiscale-spatial-image)
pyramid with the same chunk shape and the same codec (Blosc zstd level 3, byte shuffle), and
reports wall time and peak RSS. Peers get the levels voxzarr plans (anisotropy aware) where
they accept explicit factors; ome-zarr-py runs with its default scaler, as users call it.

    python benchmarks/pyramid.py                       # (128, 1024, 1024), all tools
    python benchmarks/pyramid.py --shape 64,512,512    # smaller
    python benchmarks/pyramid.py --lazy --shape 512,2048,2048 --tools voxzarr  # 4 GiB stream

``--lazy`` generates the volume chunk by chunk inside the dask graph instead of holding it, to
show that voxzarr's memory does not grow with the image.

Two ``floor`` rows bound what any tool can do: ``floor-encode`` only compresses the exact
chunks of voxzarr's levels (prepared in memory beforehand: no reduction, no zarr, no dask),
``floor-write`` also writes them as files, both on one thread per CPU. ``wall / floor`` and
``CPU / floor`` compare each tool with ``floor-write``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

#: ``floor-*`` are not tools but the cost every tool must pay: compressing (and writing)
#: the chunks of the levels, prepared in memory beforehand (see :func:`run_floor`)
TOOLS = ("floor-encode", "floor-write", "voxzarr", "ome-zarr-py", "ngff-zarr",
         "ngff-zarr-mean", "msi")
GEN_BLOCK = 128


def _block(z0: int, y0: int, x0: int, shape: tuple[int, ...]) -> np.ndarray:
    """Deterministic microscopy-like block: smooth structure, background and noise."""
    rng = np.random.default_rng([z0, y0, x0])
    z, y, x = np.ogrid[z0:z0 + shape[0], y0:y0 + shape[1], x0:x0 + shape[2]]
    smooth = (np.sin(z / 9.0) * np.cos(y / 23.0) * np.sin(x / 17.0) + 1.0) * 900.0
    return (100 + smooth + rng.integers(0, 64, shape)).astype(np.uint16)


def make_volume(shape: tuple[int, ...], lazy: bool):
    """The input: a numpy array filled block by block, or (``lazy``) a dask graph of blocks."""
    import dask.array as da

    chunks = tuple(min(GEN_BLOCK, n) for n in shape)
    if not lazy:  # no temporary copies: peak RSS before the write is the array itself
        out = np.empty(shape, dtype=np.uint16)
        for z0 in range(0, shape[0], chunks[0]):
            for y0 in range(0, shape[1], chunks[1]):
                for x0 in range(0, shape[2], chunks[2]):
                    sl = np.s_[z0:z0 + chunks[0], y0:y0 + chunks[1], x0:x0 + chunks[2]]
                    out[sl] = _block(z0, y0, x0, out[sl].shape)
        return out

    def gen(block_info=None):
        loc = block_info[None]["array-location"]
        return _block(loc[0][0], loc[1][0], loc[2][0],
                      tuple(b - a for a, b in loc))

    return da.map_blocks(gen, chunks=da.core.normalize_chunks(chunks, shape), dtype=np.uint16)


def _levels_plan(shape, voxel, min_size):
    """Cumulative per-level factors of voxzarr's default plan (shared with the peers)."""
    import voxzarr as vz
    from voxzarr.pyramid import plan_pyramid

    img = vz.from_array(np.broadcast_to(np.uint16(0), shape), "zyx",
                        voxel_size=dict(zip("zyx", voxel, strict=True)))
    plan = plan_pyramid(img, min_size=min_size)
    return [dict(zip("zyx", plan.cumulative(i), strict=True))
            for i in range(1, plan.n_levels)], [list(f) for f in plan.factors[1:]]


CODEC = "zstd"


def _codecs_v3() -> list:
    """The one codec every tool writes with (``--codec none``: no compression)."""
    from zarr.codecs import BloscCodec

    return [] if CODEC == "none" else [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")]


def _level_chunks(data: np.ndarray, relative, chunks) -> tuple[list, list[list[np.ndarray]]]:
    """Every stored chunk of every level, contiguous and edge chunks padded with 0 as zarr
    stores them; the levels are voxzarr's mean levels (the factors every tool but
    ome-zarr-py is given)."""
    from voxzarr._downsample import reduce_block

    levels = [data]
    for f in relative:
        levels.append(reduce_block(levels[-1], f, "mean"))
    out = []
    for lv in levels:
        cks = []
        for z in range(0, lv.shape[0], chunks[0]):
            for y in range(0, lv.shape[1], chunks[1]):
                for x in range(0, lv.shape[2], chunks[2]):
                    part = lv[z:z + chunks[0], y:y + chunks[1], x:x + chunks[2]]
                    ck = np.zeros(chunks, dtype=lv.dtype)
                    ck[tuple(slice(0, n) for n in part.shape)] = part
                    cks.append(ck)
        out.append(cks)
    return [list(lv.shape) for lv in levels], out


def run_floor(tool: str, out: Path, shape, voxel, chunks, min_size) -> dict:
    """The compression floor: encode (``floor-encode``) or encode and write as chunk files
    (``floor-write``) the exact chunks of all levels, on a pool of one thread per CPU, with
    the benchmark's codec. No reduction, no zarr, no dask: no tool can write these levels
    with this codec faster on this machine."""
    from concurrent.futures import ThreadPoolExecutor

    import zarr.codecs  # noqa: F401  (zarr runs blosc single-threaded per call; so do we)
    from numcodecs import Blosc

    data = make_volume(shape, False)
    _, relative = _levels_plan(shape, voxel, min_size)
    shapes, levels = _level_chunks(data, relative, chunks)
    del data
    blosc = None if CODEC == "none" else Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE)
    encode = (lambda ck: ck.tobytes()) if blosc is None else blosc.encode
    write = tool == "floor-write"
    jobs = [(i, j, ck) for i, cks in enumerate(levels) for j, ck in enumerate(cks)]

    def one(job) -> int:
        i, j, ck = job
        raw = encode(ck)
        if write:
            with open(out / str(i) / str(j), "wb") as fh:
                fh.write(raw)
        return len(raw)

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    if write:
        for i in range(len(levels)):
            (out / str(i)).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        stored = sum(pool.map(one, jobs))
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    return {"tool": tool, "seconds": seconds, "cpu_seconds": cpu,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_mib": base, "stored_mib": stored / 2**20,
            "levels": shapes}


def run_tool(tool: str, out: Path, shape, voxel, chunks, min_size, lazy) -> dict:
    if tool.startswith("floor-"):
        return run_floor(tool, out, shape, voxel, chunks, min_size)
    data = make_volume(shape, lazy)
    cumulative, relative = _levels_plan(shape, voxel, min_size)
    scale = dict(zip("zyx", voxel, strict=True))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    if tool == "voxzarr":
        import voxzarr as vz

        img = vz.from_array(data, "zyx", voxel_size=scale)
        img.vox.to_ome_zarr(out, pyramid={"min_size": min_size}, chunks=chunks,
                            compressor=None if CODEC == "none" else "zstd", clevel=3,
                            progress=False)
    elif tool == "ome-zarr-py":
        import zarr
        from ome_zarr.writer import write_image

        group = zarr.open_group(str(out), mode="w", zarr_format=3)
        write_image(data, group, axes="zyx", scale=scale,
                    storage_options={"chunks": chunks, "compressors": _codecs_v3()})
    elif tool in ("ngff-zarr", "ngff-zarr-mean"):
        import ngff_zarr as nz

        image = nz.to_ngff_image(data, dims=["z", "y", "x"], scale=scale)
        method = nz.Methods.DASK_BIN_SHRINK if tool == "ngff-zarr-mean" else None
        ms = nz.to_multiscales(image, scale_factors=cumulative, method=method,
                               chunks=chunks[0])
        nz.to_ngff_zarr(str(out), ms, version="0.5", compressors=_codecs_v3())
    elif tool == "msi":
        import spatial_image as si
        from multiscale_spatial_image import to_multiscale

        image = si.to_spatial_image(data, dims="zyx", scale=scale)
        factors = [dict(zip("zyx", f, strict=True)) for f in relative]
        tree = to_multiscale(image, factors, chunks=chunks[0])
        enc = {f"/{k}": {"image": {"compressors": tuple(_codecs_v3())}} for k in tree.children}
        tree.to_zarr(str(out), mode="w", encoding=enc, zarr_format=3)
    else:
        raise SystemExit(f"unknown tool {tool}")
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tool": tool, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak,
            "rss_before_mib": base, "levels": _level_shapes(out),
            "stored_mib": _du(out) / 2**20}


def _cpu_seconds() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _level_shapes(out: Path) -> list[list[int]]:
    import zarr

    group = zarr.open_group(str(out), mode="r")
    arrays = list(group.arrays())
    for _, sub in group.groups():
        arrays += list(sub.arrays())
    shapes = [list(a.shape) for _, a in arrays if a.ndim == 3]  # not coordinate arrays
    return sorted(shapes, key=lambda s: -int(np.prod(s)))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="128,1024,1024")
    ap.add_argument("--voxel", default="1.0,0.2,0.2")
    ap.add_argument("--chunks", default="128,128,128")
    ap.add_argument("--min-size", type=int, default=64)
    ap.add_argument("--codec", choices=("zstd", "none"), default="zstd")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--lazy", action="store_true", help="generate the input inside the graph")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--run", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    voxel = tuple(float(v) for v in args.voxel.split(","))
    chunks = tuple(int(v) for v in args.chunks.split(","))
    global CODEC
    CODEC = args.codec
    if args.run:
        warnings.simplefilter("ignore")
        res = run_tool(args.run, Path(args.out), shape, voxel, chunks, args.min_size, args.lazy)
        print(json.dumps(res))
        return

    tools = args.tools.split(",")
    load_start = os.getloadavg()  # other jobs on the machine skew wall times, not CPU
    best: dict[str, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="vz-pyr-bench-"))
    try:
        for _ in range(args.repeat):  # round robin: load changes hit every tool alike
            for tool in tools:
                out = tmp / f"{tool}.zarr"
                cmd = [sys.executable, __file__, "--run", tool, "--out", str(out),
                       "--shape", args.shape, "--voxel", args.voxel, "--chunks", args.chunks,
                       "--min-size", str(args.min_size), "--codec", args.codec]
                cmd += ["--lazy"] if args.lazy else []
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      env={**os.environ, "PYTHONWARNINGS": "ignore"})
                shutil.rmtree(out, ignore_errors=True)
                if proc.returncode != 0:
                    print(f"{tool}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"{tool:15s} {res['seconds']:7.1f} s (CPU {res['cpu_seconds']:6.1f} s)  peak "
                      f"RSS {res['peak_rss_mib']:6.0f} MiB (input held: "
                      f"{res['rss_before_mib']:4.0f} MiB)", flush=True)
                if tool not in best or res["seconds"] < best[tool]["seconds"]:
                    best[tool] = res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_end = os.getloadavg()
    results = [best[t] for t in tools if t in best]
    ref = next((r for r in results if r["tool"] == "voxzarr"), None)
    floor = next((r for r in results if r["tool"] == "floor-write"), None)
    codec = "no compression" if args.codec == "none" else "blosc zstd-3 shuffle"
    print(f"\nshape {shape} uint16, voxel {voxel}, chunks {chunks}, {codec}, "
          f"{os.cpu_count()} CPUs, input {'lazy' if args.lazy else 'in memory'}, load average "
          f"(1 min) {load_start[0]:.1f} at start, {load_end[0]:.1f} at end")
    print("| tool | wall (s) | wall / voxzarr | wall / floor | CPU (s) | CPU / voxzarr | "
          "CPU / floor | peak RSS (MiB) | stored (MiB) | levels (shapes) |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def ratio(a: float, b: dict | None, key: str) -> str:
        return f"{a / b[key]:.2f}" if b else "-"

    for r in results:
        shapes = "; ".join("x".join(map(str, s)) for s in r["levels"])
        print(f"| {r['tool']} | {r['seconds']:.2f} | {ratio(r['seconds'], ref, 'seconds')} | "
              f"{ratio(r['seconds'], floor, 'seconds')} | {r['cpu_seconds']:.2f} | "
              f"{ratio(r['cpu_seconds'], ref, 'cpu_seconds')} | "
              f"{ratio(r['cpu_seconds'], floor, 'cpu_seconds')} | {r['peak_rss_mib']:.0f} | "
              f"{r['stored_mib']:.0f} | {shapes} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
