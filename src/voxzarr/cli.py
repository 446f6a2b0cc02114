"""The ``voxzarr`` command line: one subcommand per job, each with ``--help``.

Each subcommand is a ``_setup_<name>(parser)`` / ``_run_<name>(args) -> int`` pair registered
with :func:`command`. Errors of voxzarr become one clear line on stderr and exit status 1;
success is exit status 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import VoxzarrError

__all__ = ["main", "command"]

_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                           Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str):
    """Register ``setup`` (decorated) and its ``run`` function as subcommand ``name``."""

    def wrap(setup: Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]):
        _COMMANDS[name] = (help, setup, None)  # type: ignore[assignment]
        return setup

    return wrap


def _voxel_size(text: str) -> dict[str, float] | float:
    """``"1"`` or ``"z=1,y=0.2,x=0.2"`` or ``"1,0.2,0.2"`` (z, y, x)."""
    if "=" in text:
        out = {}
        for part in text.split(","):
            k, v = part.split("=")
            out[k.strip()] = float(v)
        return out
    parts = [float(p) for p in text.split(",")]
    if len(parts) == 1:
        return parts[0]
    return dict(zip("zyx"[-len(parts):], parts, strict=True))


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")


def _progress_flag(args: argparse.Namespace) -> bool | None:
    return False if getattr(args, "no_progress", False) else None


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ----------------------------------------------------------------------------- commands
# Each block below owns one subcommand.


@command("info", "axes, shape, dtype, voxel size, chunks, codecs and sizes of each level")
def _setup_info(p: argparse.ArgumentParser):
    p.add_argument("path", help="OME-Zarr store")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def run(args: argparse.Namespace) -> int:
        from .info import format_info, info

        report = info(args.path)
        if args.json:
            _print_json(report)
        else:
            print(format_info(report))
        return 0

    return run


@command("demo", "write the bundled sample as OME-Zarr, make it isotropic, plot projections")
def _setup_demo(p: argparse.ArgumentParser):
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    def run(args: argparse.Namespace) -> int:
        from .demo import run_demo

        run_demo(args.out, overwrite=args.overwrite)
        return 0

    return run


@command("png", "write one PNG per z plane or timepoint (physical aspect, 8 or 16 bit)")
def _setup_png(p: argparse.ArgumentParser):
    p.add_argument("path", help="OME-Zarr image")
    p.add_argument("outdir", help="folder for the PNGs (created if missing)")
    p.add_argument("--level", default="0", help="multiscale level (index or path; default 0)")
    p.add_argument("--dim", choices=("z", "t"), default="z",
                   help="one PNG per z plane (default) or per timepoint")
    p.add_argument("--projection", choices=("max", "mean", "min"), default=None,
                   help="reduce the remaining axis (z for --dim t, t for --dim z)")
    p.add_argument("--vmin", type=float, default=None, help="value shown black (default: min)")
    p.add_argument("--vmax", type=float, default=None, help="value shown white (default: max)")
    p.add_argument("--cmap", default="gray", help="matplotlib colour map (8-bit only)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bits per sample")
    p.add_argument("--overwrite", action="store_true", help="replace existing PNGs")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .io import open_image
        from .plot import to_pngs

        level: int | str = int(args.level) if args.level.isdigit() else args.level
        img = open_image(args.path, level=level)
        paths = to_pngs(img, args.outdir, dim=args.dim, projection=args.projection,
                        vmin=args.vmin, vmax=args.vmax, cmap=args.cmap, bits=args.bits,
                        overwrite=args.overwrite, progress_bar=_progress_flag(args))
        print(f"wrote {len(paths)} PNGs to {args.outdir} ({paths[0].name} .. {paths[-1].name})")
        return 0

    return run


@command("validate", "check an OME-Zarr store (or a group's JSON) against NGFF 0.4 / 0.5")
def _setup_validate(p: argparse.ArgumentParser):
    p.add_argument("path", help="OME-Zarr store, or a .json file of group attributes")
    p.add_argument("--json", action="store_true",
                   help='print {"valid": ..., "message": ..., "issues": [...]} as JSON')
    p.add_argument("--strict", action="store_true",
                   help="also require what NGFF recommends (strict schemas, UDUNITS units)")
    p.add_argument("--schema-only", action="store_true",
                   help="errors only for what the official JSON schemas reject")
    p.add_argument("--ngff-version", choices=("0.4", "0.5"), default=None,
                   help="check against this version (default: as declared)")
    p.add_argument("--kind", default=None,
                   help="image, label, labels, plate, well, bioformats2raw, series "
                   "(default: detected)")

    def run(args: argparse.Namespace) -> int:
        from .ngff.validate import validate

        result = validate(args.path, version=args.ngff_version, kind=args.kind,
                          strict=args.strict, schema_only=args.schema_only)
        if args.json:
            d = result.to_dict()
            _print_json({"valid": d["valid"], "message": d["message"], "issues": d["issues"]})
        else:
            print(result.message)
        return 0 if result.valid else 1

    return run


def _shape_opt(text: str | None) -> Any:
    """``"64"`` (spatial axes), ``"1,64,64"`` or ``"z=16,y=256"`` for --chunks / --shards."""
    if text is None or text.lower() == "none":
        return None
    if "=" in text:
        return {k.strip(): int(v) for k, v in (part.split("=") for part in text.split(","))}
    parts = [int(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


@command("convert", "convert TIFF / OME-TIFF / ImageJ stacks, frame folders or raw (Thunder) "
         "archives into OME-Zarr")
def _setup_convert(p: argparse.ArgumentParser):
    p.add_argument("src", nargs="+", help="TIFF file, folder of frames, raw folder with "
                   "conf.json, or several frame files")
    p.add_argument("dest", help="OME-Zarr store to write")
    p.add_argument("--voxel-size", type=_voxel_size,
                   help="spacing: '0.2', '1,0.2,0.2' (z,y,x) or 'z=1,y=0.2,x=0.2'; "
                   "overrides the file")
    p.add_argument("--unit", help="spatial unit (micrometer, um, nm, mm, ...)")
    p.add_argument("--axes", help="what each input axis is, e.g. 'tyx' for a time-lapse "
                   "stored as plain pages")
    p.add_argument("--time-interval", type=float, help="frame interval of the t axis")
    p.add_argument("--time-unit", help="unit of the frame interval (default second)")
    p.add_argument("--channel-names", help="comma-separated channel labels")
    p.add_argument("--series", type=int, default=0, help="series of a multi-series TIFF")
    p.add_argument("--chunks", type=_shape_opt, help="chunk shape: '128', '1,64,64' or "
                   "'z=32,y=256,x=256'")
    p.add_argument("--shards", type=_shape_opt, help="shard shape, as --chunks (NGFF 0.5)")
    p.add_argument("--ngff-version", default="0.5", choices=["0.4", "0.5"],
                   help="NGFF version to write (default 0.5)")
    p.add_argument("--pyramid", action="store_true", help="also write a multiscale pyramid")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-verify", action="store_true",
                   help="skip reopening and comparing the result with the input")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .convert import convert

        src = args.src[0] if len(args.src) == 1 else args.src
        names = args.channel_names.split(",") if args.channel_names else None
        convert(src, args.dest, voxel_size=args.voxel_size, unit=args.unit, axes=args.axes,
                time_interval=args.time_interval, time_unit=args.time_unit,
                channel_names=names, series=args.series, chunks=args.chunks,
                shards=args.shards, version=args.ngff_version, pyramid=args.pyramid,
                overwrite=args.overwrite, progress=_progress_flag(args),
                verify=not args.no_verify)
        from .io import open_image

        img = open_image(args.dest)
        size = ", ".join(f"{d}={v:g} {img.vox.units.get(d) or ''}".rstrip()
                         for d, v in img.vox.scale.items())
        print(f"wrote {args.dest}: {dict(img.sizes)} {img.dtype}; {size}")
        return 0

    return run


@command("upgrade", "upgrade an NGFF 0.4 (zarr v2) store to NGFF 0.5 (zarr v3, sharded)")
def _setup_upgrade(p: argparse.ArgumentParser):
    p.add_argument("src", help="NGFF 0.4 (or older) store")
    p.add_argument("dest", help="NGFF 0.5 store to write")
    p.add_argument("--shards", default="auto",
                   help="'auto' (default, ~128 MiB per shard), 'none', one int for the "
                   "spatial axes, '1,1,256,256,256' or 'z=256,y=512'")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--reencode", action="store_true",
                   help="decode and re-encode every chunk (blosc-zstd) instead of copying "
                   "encoded chunks as they are")
    p.add_argument("--no-verify", action="store_true",
                   help="skip comparing metadata and sample shards with the source")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .convert import upgrade

        shards = "auto" if args.shards == "auto" else _shape_opt(args.shards)
        upgrade(args.src, args.dest, shards=shards, overwrite=args.overwrite,
                progress=_progress_flag(args), verify=not args.no_verify,
                reencode=args.reencode)
        print(f"wrote {args.dest} (NGFF 0.5, zarr v3)")
        return 0

    return run


@command("pyramid", "add multiscale levels to an OME-Zarr image (level 0 is not rewritten)")
def _setup_pyramid(p: argparse.ArgumentParser):
    p.add_argument("path", help="OME-Zarr image (NGFF 0.4 or 0.5)")
    p.add_argument("--levels", type=int, default=None,
                   help="number of levels including level 0 (default: until one chunk)")
    p.add_argument("--method", default=None,
                   help="mean (default), gaussian, nearest|stride, mode (default for labels), "
                   "min, max, median")
    p.add_argument("--factors", default=None,
                   help="explicit factors per level, levels separated by ';': '1,2,2;2,2,2' "
                   "(z,y,x), 'z=1,y=2,x=2' or '2' (default: anisotropy-aware halving)")
    p.add_argument("--min-size", type=int, default=None,
                   help="never halve an axis below this many voxels (default: one chunk)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--label", default=None, help="build labels/<LABEL> instead of the image")
    p.add_argument("--labels", action="store_true",
                   help="also build the pyramid of every labels/<name> (method mode)")
    p.add_argument("--overwrite", action="store_true",
                   help="rebuild when the image already has levels above 0")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .pyramid import add_levels, format_plan, label_names, parse_factors, plan_for

        opts = dict(levels=args.levels, method=args.method, min_size=args.min_size,
                    factors=None if args.factors is None else parse_factors(args.factors))
        targets = [args.label] + (label_names(args.path) if args.labels else [])
        for label in targets:
            what = args.path if label is None else f"{args.path} labels/{label}"
            if args.dry_run:
                print(f"{what}: plan (dry run)")
                print(format_plan(plan_for(args.path, label=label, **opts)))
                continue
            plan = add_levels(args.path, device=args.device, label=label,
                              overwrite=args.overwrite, progress_bar=_progress_flag(args),
                              **opts)
            print(f"{what}: wrote {plan.n_levels - 1} level(s)")
            print(format_plan(plan))
        return 0

    return run


def _filter_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["sigma=2", "order=0,1,0", "weights=[[0,1],[1,0]]"]`` -> typed parameters."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise VoxzarrError(f"parameter {item!r} is not key=value", field="--param")
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            parts = text.split(",")
            try:
                value = [float(v) for v in parts] if len(parts) > 1 else text
            except ValueError:
                value = text
        out[key.strip()] = value
    return out


def _depth_arg(text: str) -> Any:
    """``"8"`` or ``"z=4,y=8,x=8"`` (voxels)."""
    try:
        if "=" in text:
            return {k.strip(): int(v) for k, v in (p.split("=") for p in text.split(","))}
        return int(text)
    except ValueError:
        raise VoxzarrError(f"depth must be N or dim=N,...; got {text!r}",
                           field="--depth") from None


@command("halo", "store overlap-halo chunks beside an image (one read per filtered chunk); "
         "prints each halo's status, exit status 1 when one is missing or stale")
def _setup_halo(p: argparse.ArgumentParser):
    p.add_argument("path", help="OME-Zarr image (updated in place)")
    p.add_argument("--depth", type=_depth_arg, default=None,
                   help="halo voxels per side: N, or z=4,y=8,x=8 (default: from --filter)")
    p.add_argument("--filter", dest="filter_name", default=None,
                   help="size the halo for this registered filter (e.g. gaussian)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="filter parameter, repeatable (sigma=5, mode=wrap, units=physical)")
    p.add_argument("--levels", default="all", help="'all' (default) or e.g. 0,1")
    p.add_argument("--periodic", default=None,
                   help="axes whose halo holds the opposite face (e.g. x,y), for mode=wrap")
    p.add_argument("--chunks", default=None, help="core chunk shape, e.g. 64,128,128")
    p.add_argument("--check", action="store_true",
                   help="only print the stored halos and whether they are fresh")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .halo import halo_status, write_halo

        if not args.check:
            for_filter = None
            if args.filter_name:
                for_filter = (args.filter_name, _filter_params(args.param))
            elif args.param:
                raise VoxzarrError("--param needs --filter", field="--param")
            levels: Any = args.levels
            if levels != "all":
                levels = [int(v) if v.isdigit() else v for v in levels.split(",")]
            periodic = args.periodic.split(",") if args.periodic else None
            chunks = [int(v) for v in args.chunks.split(",")] if args.chunks else None
            write_halo(None, args.path, depth=args.depth, for_filter=for_filter,
                       levels=levels, periodic=periodic, chunks=chunks,
                       progress_bar=_progress_flag(args))
        status = halo_status(args.path)
        _print_json(status)
        return 0 if status and all(s.get("fresh") for s in status) else 1

    return run


@command("filter", "filter an image chunk by chunk, exactly as on the whole image")
def _setup_filter(p: argparse.ArgumentParser):
    p.add_argument("path", help="input OME-Zarr image")
    p.add_argument("out", help="output OME-Zarr image")
    p.add_argument("name", help="registered filter (gaussian, median, sobel, ...)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="filter parameter, repeatable (sigma=2, size=3, axis=x)")
    p.add_argument("--mode", default="reflect",
                   help="boundary mode: reflect, nearest, mirror, constant, wrap")
    p.add_argument("--cval", type=float, default=0.0, help="value outside for mode=constant")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    p.add_argument("--units", default="voxel", choices=("voxel", "physical"),
                   help="sigmas in voxels (default) or physical units")
    p.add_argument("--level", default="0", help="level to filter (index or path)")
    p.add_argument("--chunks", default=None, help="output chunk shape, e.g. 64,128,128")
    p.add_argument("--version", default="0.5", choices=("0.4", "0.5"), help="output NGFF")
    halo = p.add_mutually_exclusive_group()
    halo.add_argument("--require-halo", action="store_true",
                      help="fail unless a fresh stored halo can be used")
    halo.add_argument("--no-halo", action="store_true",
                      help="ignore stored halos; gather neighbours at run time")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .filters import apply_filter
        from .io import open_image, to_ome_zarr

        level: int | str = int(args.level) if args.level.isdigit() else args.level
        img = open_image(args.path, level=level)
        halo = "require" if args.require_halo else "never" if args.no_halo else "auto"
        out = apply_filter(img, args.name, mode=args.mode, cval=args.cval,
                           device=args.device, units=args.units, halo=halo,
                           **_filter_params(args.param))
        chunks = [int(v) for v in args.chunks.split(",")] if args.chunks else None
        to_ome_zarr(out, args.out, chunks=chunks, version=args.version,
                    overwrite=args.overwrite, progress_bar=_progress_flag(args))
        print(f"wrote {args.out}: {args.name} of {args.path} level {level}")
        return 0

    return run


@command("isotropic", "resample an OME-Zarr image to isotropic voxels, streaming to OME-Zarr")
def _setup_isotropic(p: argparse.ArgumentParser):
    p.add_argument("input", help="OME-Zarr image to read (level 0)")
    p.add_argument("output", help="OME-Zarr image to write")
    p.add_argument("--voxel-size", type=float, default=None,
                   help="target voxel side before --zoom (default: the finest spacing)")
    p.add_argument("--zoom", type=float, default=1.0,
                   help="divide the voxel side by this (2 = twice as many voxels per axis)")
    p.add_argument("--order", type=int, default=1, help="spline order 0-5 (default 1)")
    p.add_argument("--mode", default="nearest", help="boundary mode (default nearest)")
    p.add_argument("--no-anti-alias", action="store_true",
                   help="do not smooth downsampled axes first")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--chunks", type=int, default=None,
                   help="output chunk side on spatial axes (default 128 in 3-D, 512 in 2-D)")
    p.add_argument("--version", dest="ngff_version", choices=("0.4", "0.5"), default="0.5",
                   help="NGFF version to write (default 0.5)")
    p.add_argument("--pyramid", action="store_true",
                   help="also write multiscale levels of the resampled image (mean, planned "
                   "as by `voxzarr pyramid`), computed in the same streaming pass")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .io import default_chunks, open_image, to_ome_zarr
        from .resample import isotropic_voxel_size, output_length, to_isotropic

        img = open_image(args.input)
        target = isotropic_voxel_size(img, args.voxel_size, args.zoom)
        scale = img.vox.voxel_size
        shape = tuple(output_length(n, scale[d], target) if d in scale else n
                      for d, n in zip(img.dims, img.shape, strict=True))
        chunks = default_chunks(img.dims, shape)
        if args.chunks is not None:
            chunks = tuple(min(args.chunks, n) if d in scale else c
                           for d, n, c in zip(img.dims, shape, chunks, strict=True))
        # compute in the chunks that are stored, so each task writes whole zarr chunks
        iso = to_isotropic(img, target, order=args.order, mode=args.mode,
                           anti_alias=not args.no_anti_alias, device=args.device,
                           chunks=chunks)
        to_ome_zarr(iso, args.output, chunks=chunks, version=args.ngff_version,
                    pyramid=args.pyramid, overwrite=args.overwrite,
                    progress_bar=_progress_flag(args))
        vs = ", ".join(f"{d}={v:g}" for d, v in iso.vox.voxel_size.items())
        print(f"wrote {args.output}: shape {tuple(iso.shape)}, voxel size {vs}")
        if args.pyramid:
            from .pyramid import format_plan, plan_pyramid

            print(format_plan(plan_pyramid(iso, chunks=chunks)))
        return 0

    return run


@command("series", "image <-> series chunk layout: chunks holding whole time series, made "
         "in one bounded-memory, resumable pass")
def _setup_series(p: argparse.ArgumentParser):
    p.add_argument("input", help="OME-Zarr image with a t axis (a series store with "
                   "--to-images); convert TIFF / frames / Thunder archives first with "
                   "`voxzarr convert`")
    p.add_argument("output", help="store to write")
    p.add_argument("--memory", default="512MB",
                   help="memory budget for data in flight, e.g. 512MB, 2GiB (default 512MB)")
    p.add_argument("--block", type=_shape_opt,
                   help="spatial block of a series chunk: '16' (every spatial axis), "
                   "'16,32' or 'y=16,x=32' (default: about 1 MiB of whole series)")
    p.add_argument("--shards", default=None,
                   help="spatial shard shape in whole blocks (default: shard only when there "
                   "would be more than 4096 chunks; 'none' for never)")
    p.add_argument("--to-images", action="store_true",
                   help="write a series store back in the image layout (one timepoint per "
                   "chunk)")
    p.add_argument("--staging", choices=("auto", "on", "off"), default="auto",
                   help="stage through a scratch array instead of re-reading the source "
                   "(default auto)")
    p.add_argument("--threads", type=int, default=None, help="threads (default: CPUs, <= 8)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--restart", action="store_true",
                   help="start again instead of resuming an interrupted conversion")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .io import open_image
        from .series import open_series, series_info, to_images, to_series

        staging = {"auto": "auto", "on": True, "off": False}[args.staging]
        common = dict(memory=args.memory, overwrite=args.overwrite, resume=not args.restart,
                      staging=staging, threads=args.threads, source=args.input,
                      progress_bar=_progress_flag(args))
        if args.to_images:
            ser = open_series(args.input)
            to_images(ser, args.output, **common)
            img = open_image(args.output)
            print(f"wrote {args.output}: image layout {dict(img.sizes)} {img.dtype}, "
                  f"chunks {img.data.chunksize}")
            return 0
        img = open_image(args.input)
        shards = None if args.shards is None else (
            False if args.shards.lower() == "none" else _shape_opt(args.shards))
        to_series(img, args.output, block=args.block, shards=shards, **common)
        meta = series_info(args.output)
        print(f"wrote {args.output}: series layout {dict(img.sizes)} {img.dtype}, "
              f"chunks {tuple(meta['chunks'])}, shards "
              f"{tuple(meta['shards']) if meta['shards'] else None}")
        return 0

    return run


# ----------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxzarr",
        description="OME-Zarr microscopy images with physical geometry: inspect, convert, "
        "validate, resample, build pyramids, halos and series layouts.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"voxzarr {__version__}")
    _add_cluster_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, setup, _) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_run=setup(p))
        _add_cluster_options(p)  # also accepted after the subcommand
    return parser


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    """``--scheduler`` / ``--workers``: run the command's dask work on a distributed cluster.

    Defaults are SUPPRESS so a value given before the subcommand is not reset by the
    subcommand's own (absent) option.
    """
    g = p.add_argument_group("dask.distributed (needs voxzarr[distributed])")
    g.add_argument("--scheduler", metavar="ADDRESS", default=argparse.SUPPRESS,
                   help="run on the dask scheduler at ADDRESS (tcp://host:8786 or a "
                   "scheduler .json file)")
    g.add_argument("--workers", metavar="N", type=int, default=argparse.SUPPRESS,
                   help="start a local cluster of N worker processes for this command")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        from ._cluster import cluster

        with cluster(getattr(args, "scheduler", None), getattr(args, "workers", None)):
            return int(args._run(args) or 0)
    except VoxzarrError as err:
        print(f"voxzarr {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"voxzarr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
