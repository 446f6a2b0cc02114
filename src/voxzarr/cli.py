"""The ``voxzarr`` command line: one subcommand per job, each with ``--help``.

Each subcommand is a ``_setup_<name>(parser)`` function registered with :func:`command`; it
adds the subcommand's options and returns its ``run(args) -> int``. Options share one
vocabulary across commands (``--ngff-version``, ``--chunks``, ``--device``, ``--filter``,
``--select``, ``--overwrite``, ``--no-progress``) and list their choices in ``--help``.

Errors and warnings become one line on stderr, worded for the command line (a message's
``keyword=`` advice is rewritten into the command's flag), with no traceback unless
``--debug``. Exit status 0 only on success.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import InvalidArgumentError, VoxzarrError

__all__ = ["main", "command", "build_parser"]

# Choices listed in --help without importing the heavy modules that define them
# (tests check each against its registry).
FILTER_NAMES = ("gaussian", "gaussian_laplace", "gaussian_gradient_magnitude",
                "difference_of_gaussians", "dog", "uniform", "median", "minimum", "maximum",
                "laplace", "sobel", "prewitt", "convolve", "correlate")
PYRAMID_METHODS = ("mean", "gaussian", "nearest", "stride", "mode", "min", "max", "median")
FILTER_MODES = ("reflect", "nearest", "mirror", "constant", "wrap")
RESAMPLE_MODES = ("constant", "grid-constant", "nearest", "reflect", "grid-mirror", "mirror",
                  "wrap", "grid-wrap")
SERIES_STATS = ("mean", "std", "var", "min", "max", "sum", "median")

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


def _add_ngff_version(p: argparse.ArgumentParser, default: str | None = "0.5",
                      help_text: str = "NGFF version to write (default 0.5)") -> None:
    p.add_argument("--ngff-version", choices=("0.4", "0.5"), default=default, help=help_text)
    # the old spelling of some commands; hidden, as `voxzarr --version` is the program's
    p.add_argument("--version", dest="ngff_version", choices=("0.4", "0.5"),
                   help=argparse.SUPPRESS)


def _add_select(p: argparse.ArgumentParser) -> None:
    p.add_argument("--select", action="append", metavar="DIM=INDEX", default=None,
                   help="pick one index of an axis first, repeatable (t=3, c=0, z=10)")


def _select(img: Any, items: Sequence[str] | None) -> Any:
    """Apply ``--select t=3 --select c=0`` to an image."""
    picks: dict[str, int] = {}
    for item in items or []:
        dim, sep, text = item.partition("=")
        if not sep or not text.strip().lstrip("-").isdigit():
            raise InvalidArgumentError(f"expected DIM=INDEX, found {item!r}", field="--select")
        if dim.strip() not in img.dims:
            raise InvalidArgumentError(f"expected one of the image's axes {tuple(img.dims)}, found "
                                       f"{dim.strip()!r}", field="--select")
        picks[dim.strip()] = int(text)
    return img.isel(picks) if picks else img


def _open_level(path: str, level: str) -> Any:
    from .io import open_image

    return open_image(path, level=int(level) if level.isdigit() else level)


def _save_figure(fig: Any, out: str, overwrite: bool) -> None:
    from pathlib import Path

    from .errors import OverwriteError

    target = Path(out)
    if target.exists() and not overwrite:
        raise OverwriteError("already exists; pass --overwrite to replace it", path=target)
    fig.savefig(target, dpi=150, bbox_inches="tight")


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
        from .inspect import format_info, info

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
    _add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing PNGs")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .io import open_image
        from .plot import to_pngs

        level: int | str = int(args.level) if args.level.isdigit() else args.level
        img = _select(open_image(args.path, level=level), args.select)
        paths = to_pngs(img, args.outdir, dim=args.dim, projection=args.projection,
                        vmin=args.vmin, vmax=args.vmax, cmap=args.cmap, bits=args.bits,
                        overwrite=args.overwrite, progress=_progress_flag(args))
        print(f"wrote {len(paths)} PNGs to {args.outdir} ({paths[0].name} .. {paths[-1].name})")
        return 0

    return run


@command("validate", "check an OME-Zarr store (or a group's JSON) against NGFF 0.4 / 0.5 / "
         "0.6rc0; exit 0 valid, 1 invalid, 3 unsupported version")
def _setup_validate(p: argparse.ArgumentParser):
    p.add_argument("path", help="OME-Zarr store, or a .json file of group attributes")
    p.add_argument("--json", action="store_true",
                   help='print {"valid": ..., "message": ..., "issues": [...]} as JSON')
    p.add_argument("--strict", action="store_true",
                   help="also require what NGFF recommends (strict schemas, UDUNITS units)")
    p.add_argument("--schema-only", action="store_true",
                   help="errors only for what the official JSON schemas reject")
    p.add_argument("--ngff-version", choices=("0.4", "0.5", "0.6rc0"), default=None,
                   help="check against this version (default: as declared)")
    p.add_argument("--kind", default=None,
                   help="image, label, labels, plate, well, bioformats2raw, series, scene, "
                   "transformations (default: detected)")

    def run(args: argparse.Namespace) -> int:
        from .ngff.validate import validate

        result = validate(args.path, version=args.ngff_version, kind=args.kind,
                          strict=args.strict, schema_only=args.schema_only)
        if args.json:
            d = result.to_dict()
            _print_json({"valid": d["valid"], "status": d["status"], "message": d["message"],
                         "issues": d["issues"]})
        else:
            print(result.message)
        # a version validate cannot check is no verdict: its own exit status
        return {"valid": 0, "invalid": 1, "unsupported": 3}[result.status]

    return run


def _shape_opt(text: str | None) -> Any:
    """``"64"`` (spatial axes), ``"1,64,64"`` or ``"z=16,y=256"`` for --chunks / --shards."""
    if text is None or text.lower() == "none":
        return None
    if "=" in text:
        return {k.strip(): int(v) for k, v in (part.split("=") for part in text.split(","))}
    parts = [int(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


@command("view", "serve an OME-Zarr store over HTTP on this machine and print links that open "
         "it in neuroglancer, vizarr or a built-in preview page; Ctrl-C stops")
def _setup_view(p: argparse.ArgumentParser):
    p.epilog = ("The store is served read-only at http://HOST:PORT/<folder name>/ with CORS "
                "headers (Access-Control-Allow-Origin: *) and byte-range support, which web "
                "viewers need. http://HOST:PORT/ is a self-contained preview page (no "
                "internet needed): XY and XZ maximum projections of the lowest-resolution "
                "level at true physical aspect, with the voxel size.")
    p.add_argument("path", help="OME-Zarr store (a local folder)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                   "0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000,
                   help="port to listen on (default 8000; 0 picks a free one)")
    p.add_argument("--viewer", choices=("neuroglancer", "vizarr", "local"),
                   default="neuroglancer",
                   help="link printed first and opened by --open (default neuroglancer; "
                   "local is the built-in preview page)")
    p.add_argument("--open", action="store_true", help="open that link in a web browser")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")

    def run(args: argparse.Namespace) -> int:
        from .view import serve

        return serve(args.path, host=args.host, port=args.port, viewer=args.viewer,
                     open_browser=args.open, verbose=args.verbose)

    return run


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
    _add_ngff_version(p)
    p.add_argument("--pyramid", action="store_true", help="also write a multiscale pyramid")
    p.add_argument("--layout", choices=("auto", "image", "series"), default="auto",
                   help="chunk layout: 'series' (chunks hold whole time series; open with "
                   "vz.open_series), 'image', or 'auto' (series for a Thunder series, "
                   "default)")
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
                verify=not args.no_verify, layout=args.layout)
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
                   help="number of levels including level 0 (default: halve until an axis "
                   "would go under --min-size)")
    p.add_argument("--method", default=None, choices=PYRAMID_METHODS,
                   help="mean (default), gaussian, nearest|stride, mode (default for labels), "
                   "min, max, median")
    p.add_argument("--factors", default=None,
                   help="explicit factors per level, levels separated by ';': '1,2,2;2,2,2' "
                   "(z,y,x), 'z=1,y=2,x=2' or '2' (default: anisotropy-aware halving)")
    p.add_argument("--min-size", type=int, default=None,
                   help="never halve an axis below this many voxels (default: one chunk, at "
                   "most 256)")
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
                              overwrite=args.overwrite, progress=_progress_flag(args),
                              **opts)
            print(f"{what}: wrote {plan.n_levels - 1} level(s)")
            if plan.n_levels == 1:
                print(f"{what}: no level written: the image {plan.shapes[0]} is no larger "
                      "than --min-size along any axis (default: one chunk, at most 256 "
                      "voxels); ask for levels with --levels N or a smaller --min-size")
            print(format_plan(plan))
        return 0

    return run


def _filter_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["sigma=2", "order=0,1,0", "weights=[[0,1],[1,0]]"]`` -> typed parameters."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"parameter {item!r} is not key=value", field="--param")
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
        raise InvalidArgumentError(f"depth must be N or dim=N,...; got {text!r}",
                                   field="--depth") from None


@command("halo", "store overlap-halo chunks beside an image (one read per filtered chunk); "
         "prints each halo's status, exit status 1 when one is missing or stale")
def _setup_halo(p: argparse.ArgumentParser):
    p.add_argument("path", help="OME-Zarr image (updated in place)")
    p.add_argument("--depth", type=_depth_arg, default=None,
                   help="halo voxels per side: N, or z=4,y=8,x=8 (default: from --filter)")
    p.add_argument("--filter", dest="filter_name", default=None, choices=FILTER_NAMES,
                   metavar="FILTER",
                   help="size the halo for this filter: " + ", ".join(FILTER_NAMES))
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="filter parameter, repeatable (sigma=5, mode=wrap, units=physical)")
    p.add_argument("--levels", default="all", help="'all' (default) or e.g. 0,1")
    p.add_argument("--periodic", default=None,
                   help="axes whose halo holds the opposite face (e.g. x,y), for mode=wrap")
    p.add_argument("--chunks", type=_shape_opt, default=None,
                   help="core chunk shape: '64', '64,128,128' or 'z=64,y=128,x=128'")
    p.add_argument("--check", action="store_true",
                   help="only print the stored halos and whether they are fresh")
    _add_progress(p)

    def run(args: argparse.Namespace) -> int:
        from .halo import halo_status, write_halo

        if not args.check:
            for_filter = None
            if args.filter_name:
                from .filters import halo_depth_rule

                for_filter = halo_depth_rule((args.filter_name, _filter_params(args.param)))
            elif args.param:
                raise InvalidArgumentError("--param needs --filter", field="--param")
            levels: Any = args.levels
            if levels != "all":
                levels = [int(v) if v.isdigit() else v for v in levels.split(",")]
            periodic = args.periodic.split(",") if args.periodic else None
            chunks = args.chunks
            write_halo(None, args.path, depth=args.depth, for_filter=for_filter,
                       levels=levels, periodic=periodic, chunks=chunks,
                       progress=_progress_flag(args))
        status = halo_status(args.path)
        _print_json(status)
        return 0 if status and all(s.get("fresh") for s in status) else 1

    return run


@command("filter", "filter an image chunk by chunk, exactly as on the whole image")
def _setup_filter(p: argparse.ArgumentParser):
    p.add_argument("path", metavar="IN", help="input OME-Zarr image")
    p.add_argument("out", metavar="OUT", help="output OME-Zarr image")
    p.add_argument("legacy_name", nargs="?", metavar="FILTER", choices=(None, *FILTER_NAMES),
                   help=argparse.SUPPRESS)  # the old `filter IN OUT NAME` order still works
    p.add_argument("--filter", dest="name", default=None, choices=FILTER_NAMES,
                   metavar="FILTER", help="the filter (required): " + ", ".join(FILTER_NAMES))
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="filter parameter, repeatable (sigma=2, size=3, axis=x)")
    p.add_argument("--mode", default="reflect", choices=FILTER_MODES,
                   help="boundary mode (default reflect)")
    p.add_argument("--cval", type=float, default=0.0, help="value outside for --mode constant")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"),
                   help="where to compute (default auto: the GPU when there is one)")
    p.add_argument("--physical", dest="units", action="store_const", const="physical",
                   default="voxel", help="sigmas and sizes in physical units, not voxels")
    p.add_argument("--units", dest="units", choices=("voxel", "physical"),
                   help=argparse.SUPPRESS)
    p.add_argument("--level", default="0", help="level to filter (index or path)")
    p.add_argument("--chunks", type=_shape_opt, default=None,
                   help="output chunk shape: '128', '64,128,128' or 'z=64,y=128,x=128'")
    _add_ngff_version(p)
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

        name = args.name or args.legacy_name
        if name is None:
            raise InvalidArgumentError(f"expected a filter, found none: add --filter, one of "
                                       f"{', '.join(FILTER_NAMES)}", field="--filter")
        args.name = name
        level: int | str = int(args.level) if args.level.isdigit() else args.level
        img = open_image(args.path, level=level)
        halo = "require" if args.require_halo else "never" if args.no_halo else "auto"
        out = apply_filter(img, args.name, mode=args.mode, cval=args.cval,
                           device=args.device, units=args.units, halo=halo,
                           **_filter_params(args.param))
        to_ome_zarr(out, args.out, chunks=args.chunks, version=args.ngff_version,
                    overwrite=args.overwrite, progress=_progress_flag(args))
        print(f"wrote {args.out}: {args.name} of {args.path} level {level}")
        return 0

    return run


@command("isotropic", "resample an OME-Zarr image to isotropic voxels, streaming to OME-Zarr")
def _setup_isotropic(p: argparse.ArgumentParser):
    p.add_argument("input", metavar="IN", help="OME-Zarr image to read (level 0)")
    p.add_argument("output", metavar="OUT", help="OME-Zarr image to write")
    p.add_argument("--voxel-size", type=float, default=None,
                   help="target voxel side before --zoom (default: the finest spacing)")
    p.add_argument("--zoom", type=float, default=1.0,
                   help="divide the voxel side by this (2 = twice as many voxels per axis)")
    p.add_argument("--order", type=int, default=1, help="spline order 0-5 (default 1)")
    p.add_argument("--mode", default="nearest", choices=RESAMPLE_MODES,
                   help="boundary mode (default nearest)")
    p.add_argument("--no-anti-alias", action="store_true",
                   help="do not smooth downsampled axes first")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--chunks", type=_shape_opt, default=None,
                   help="output chunk shape: '128' (every spatial axis), '64,128,128' or "
                   "'z=64,y=128,x=128' (default 128 in 3-D, 512 in 2-D)")
    _add_ngff_version(p)
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
        if isinstance(args.chunks, int):
            chunks = tuple(min(args.chunks, n) if d in scale else c
                           for d, n, c in zip(img.dims, shape, chunks, strict=True))
        elif isinstance(args.chunks, dict):
            chunks = tuple(min(args.chunks.get(d, c), n)
                           for d, n, c in zip(img.dims, shape, chunks, strict=True))
        elif args.chunks is not None:
            if len(args.chunks) != len(shape):
                raise InvalidArgumentError(f"expected {len(shape)} chunk lengths for axes "
                                           f"{''.join(img.dims)}, found {len(args.chunks)}",
                                           field="--chunks")
            chunks = tuple(min(c, n) for c, n in zip(args.chunks, shape, strict=True))
        # compute in the chunks that are stored, so each task writes whole zarr chunks
        iso = to_isotropic(img, target, order=args.order, mode=args.mode,
                           anti_alias=not args.no_anti_alias, device=args.device,
                           chunks=chunks)
        to_ome_zarr(iso, args.output, chunks=chunks, version=args.ngff_version,
                    pyramid=args.pyramid, overwrite=args.overwrite,
                    progress=_progress_flag(args))
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
    p.add_argument("input", metavar="IN", help="OME-Zarr image with a t axis (a series store "
                   "with --to-images); convert TIFF / frames / Thunder archives first with "
                   "`voxzarr convert`")
    p.add_argument("output", metavar="OUT", help="store to write")
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
                      progress=_progress_flag(args))
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


@command("show", "save XY / XZ / ZY projections at true physical aspect as a picture")
def _setup_show(p: argparse.ArgumentParser):
    p.add_argument("path", metavar="IN", help="OME-Zarr image")
    p.add_argument("out", metavar="OUT", help="picture to write (.png, .pdf, .svg)")
    p.add_argument("--level", default="0", help="multiscale level (index or path; default 0)")
    p.add_argument("--reduce", choices=("max", "mean", "min"), default="max",
                   help="projection along each hidden axis (default max)")
    p.add_argument("--time", default="0",
                   help="timepoint index, or max / mean / min over time (default 0)")
    p.add_argument("--vmin", type=float, default=None, help="value shown black")
    p.add_argument("--vmax", type=float, default=None, help="value shown white")
    p.add_argument("--cmap", default="gray", help="matplotlib colour map (one channel)")
    p.add_argument("--no-scale-bar", action="store_true", help="draw no scale bar")
    _add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing picture")

    def run(args: argparse.Namespace) -> int:
        from .plot import projections

        img = _select(_open_level(args.path, args.level), args.select)
        t: int | str = int(args.time) if args.time.lstrip("-").isdigit() else args.time
        fig = projections(img, reduce=args.reduce, t=t, cmap=args.cmap, vmin=args.vmin,
                          vmax=args.vmax, scale_bar=not args.no_scale_bar)
        _save_figure(fig, args.out, args.overwrite)
        print(f"wrote {args.out}: {args.reduce} projections of {args.path}")
        return 0

    return run


@command("series-map", "save a per-voxel map of time series (mean, std, ...) as a picture")
def _setup_series_map(p: argparse.ArgumentParser):
    p.add_argument("path", metavar="IN", help="OME-Zarr image or series store with a t axis")
    p.add_argument("out", metavar="OUT", help="picture to write (.png, .pdf, .svg)")
    p.add_argument("--stat", choices=SERIES_STATS, default="mean",
                   help="statistic over t per voxel (default mean)")
    _add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing picture")

    def run(args: argparse.Namespace) -> int:
        ser = _select(_open_level(args.path, "0"), args.select)
        fig = ser.vox.series.map_figure(args.stat)
        _save_figure(fig, args.out, args.overwrite)
        print(f"wrote {args.out}: {args.stat} over t of {args.path}")
        return 0

    return run


def _voxel_arg(text: str) -> dict[str, int]:
    """``"z=1,y=20,x=31"``: one voxel by index on every spatial axis."""
    try:
        return {k.strip(): int(v) for k, v in (part.split("=") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected z=I,y=J,x=K, found {text!r}") from None


@command("series-traces", "save the time series of a few voxels as a picture")
def _setup_series_traces(p: argparse.ArgumentParser):
    p.add_argument("path", metavar="IN", help="OME-Zarr image or series store with a t axis")
    p.add_argument("out", metavar="OUT", help="picture to write (.png, .pdf, .svg)")
    p.add_argument("--voxel", type=_voxel_arg, action="append", metavar="z=I,y=J,x=K",
                   help="a voxel to draw, repeatable (default: --n voxels on a grid)")
    p.add_argument("--n", type=int, default=8, help="how many voxels without --voxel (8)")
    p.add_argument("--normalize", choices=("dff", "zscore"), default=None,
                   help="draw dF/F or z-scores instead of raw values")
    _add_select(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing picture")

    def run(args: argparse.Namespace) -> int:
        ser = _select(_open_level(args.path, "0"), args.select)
        fig = ser.vox.series.plot(args.voxel, args.n, args.normalize)
        _save_figure(fig, args.out, args.overwrite)
        print(f"wrote {args.out}: traces of {args.path}")
        return 0

    return run


# ----------------------------------------------------------------------------- messages
#: API keywords whose command-line flag is not simply ``--`` + the dashed name
_FLAG_FOR = {"version": "--ngff-version", "progress_bar": "--no-progress",
             "progress": "--no-progress", "projection": "--projection"}


def _flags(parser: argparse.ArgumentParser | None) -> dict[str, str]:
    """API keyword -> flag of ``parser`` (its options' dests, plus :data:`_FLAG_FOR`)."""
    out: dict[str, str] = {}
    for action in getattr(parser, "_actions", []):
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.help != argparse.SUPPRESS:
            out.setdefault(action.dest, longs[0])
            out.setdefault(longs[0][2:].replace("-", "_"), longs[0])
    out.update({k: v for k, v in _FLAG_FOR.items() if v in out.values() or k not in out})
    return out


_KW_VALUE = re.compile(r"\b([a-z][a-z_]*)=(?:'([^']*)'|\"([^\"]*)\"|([\w.]+)(?![\w(]))")
_KW_BARE = re.compile(r"\b([a-z][a-z_]*)=(?=[\s),;]|$)")
_ISEL = re.compile(r"\b(?:img|ser|image)\.isel\(\s*\{?'?\"?(\w)'?\"?\s*[=:][^)]*\)")


def cli_words(text: str, parser: argparse.ArgumentParser | None = None) -> str:
    """Rewrite a message's Python advice (``axes='tyx'``, ``overwrite=True``, ``img.isel``)
    into the flags of ``parser``'s command, so the command line speaks its own words."""
    flags = _flags(parser)

    def with_value(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in flags:
            return m.group(0)
        value = next(v for v in m.groups()[1:] if v is not None)
        return flags[key] if value in ("True", "") else f"{flags[key]} {value}"

    def bare(m: re.Match[str]) -> str:
        return flags.get(m.group(1), m.group(0))

    text = _ISEL.sub(lambda m: f"--select {m.group(1)}=INDEX" if "select" in flags
                     else m.group(0), text)
    text = _KW_VALUE.sub(with_value, text)
    return _KW_BARE.sub(bare, text)


def _error_line(err: VoxzarrError, parser: argparse.ArgumentParser | None) -> str:
    """``path: --flag: message`` with an argument's name given as its flag."""
    flags = _flags(parser)
    field = err.field
    if field is not None and field in flags:
        field = flags[field]
    where = [w for w in (err.path, field) if w is not None]
    text = cli_words(" ".join(err.message.split()), parser)
    return f"{': '.join(where)}: {text}" if where else text


@contextmanager
def _one_line_warnings(prefix: str, parser: argparse.ArgumentParser | None) -> Iterator[None]:
    """Show warnings as ``voxzarr CMD: warning: ...`` lines in command-line words."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = " ".join(str(message).split())
        print(f"{prefix}: warning: {cli_words(text, parser)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


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
        p.set_defaults(_run=setup(p), _parser=p)
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
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show Python tracebacks and warnings as they are")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    prefix = f"voxzarr {args.command}"
    debug = bool(getattr(args, "debug", False))
    sub = getattr(args, "_parser", None)
    try:
        from ._cluster import cluster

        with _one_line_warnings(prefix, sub) if not debug else _as_is():
            with cluster(getattr(args, "scheduler", None), getattr(args, "workers", None)):
                return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except VoxzarrError as err:
        if debug:
            raise
        print(f"{prefix}: error: {_error_line(err, sub)}", file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError, KeyError, RuntimeError, MemoryError) as err:
        # not voxzarr's own: still one line, with the way to the details
        if debug:
            raise
        what = " ".join(str(err).split()) or type(err).__name__
        print(f"{prefix}: error: {type(err).__name__}: {what} (--debug shows the traceback)",
              file=sys.stderr)
        return 1


@contextmanager
def _as_is() -> Iterator[None]:
    yield


if __name__ == "__main__":
    sys.exit(main())
