"""What every command shares: the registry, argument helpers, messages and :func:`main`.

A command module registers its ``setup(parser)`` with :func:`command`; :func:`build_parser`
calls each setup on the command's own subparser, in the order the commands were registered,
and keeps the ``run(args) -> int`` it returns. This module imports only the standard library,
:mod:`voxzarr.errors` and the (light, lazy) :mod:`voxzarr._registry`: everything heavier is
imported inside the functions that need it.
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

from .._registry import PYRAMID_METHOD_ALIASES
from .._registry import PYRAMID_METHODS as _PYRAMID_REGISTRY
from ..errors import ArgumentError, VoxzarrError

#: a command's ``run(args) -> int``: the exit status
Run = Callable[[argparse.Namespace], int]
#: a command's ``setup(parser) -> run``: adds its options to its subparser
Setup = Callable[[argparse.ArgumentParser], Run]

# Choices listed in --help without importing the heavy modules that define them
# (tests check each against its registry).
FILTER_NAMES = ("gaussian", "gaussian_laplace", "gaussian_gradient_magnitude",
                "difference_of_gaussians", "dog", "uniform", "median", "minimum", "maximum",
                "laplace", "sobel", "prewitt", "convolve", "correlate")
#: every registered pyramid method and the ``stride`` alias (a live view: lists plug-ins)
PYRAMID_METHODS = _PYRAMID_REGISTRY.view(extra=PYRAMID_METHOD_ALIASES)
FILTER_MODES = ("reflect", "nearest", "mirror", "constant", "wrap")
RESAMPLE_MODES = ("constant", "grid-constant", "nearest", "reflect", "grid-mirror", "mirror",
                  "wrap", "grid-wrap")
SERIES_STATS = ("mean", "std", "var", "min", "max", "sum", "median")

#: subcommand name -> (one-line help, setup), in the order of ``voxzarr --help``
COMMANDS: dict[str, tuple[str, Setup]] = {}


def command(name: str, help: str) -> Callable[[Setup], Setup]:
    """Register the decorated ``setup(parser) -> run`` as subcommand ``name``.

    Parameters
    ----------
    name : str
        The subcommand, as typed (``series-map``).
    help : str
        One line for ``voxzarr --help``; also the subcommand's own description.

    Returns
    -------
    callable
        A decorator that registers ``setup`` and returns it unchanged.
    """

    def wrap(setup: Setup) -> Setup:
        COMMANDS[name] = (help, setup)
        return setup

    return wrap


# ----------------------------------------------------------------------------- arguments
def voxel_size_arg(text: str) -> dict[str, float] | float:
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


def shape_arg(text: str | None) -> Any:
    """``"64"`` (spatial axes), ``"1,64,64"`` or ``"z=16,y=256"`` for --chunks / --shards."""
    if text is None or text.lower() == "none":
        return None
    if "=" in text:
        return {k.strip(): int(v) for k, v in (part.split("=") for part in text.split(","))}
    parts = [int(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def filter_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["sigma=2", "order=0,1,0", "weights=[[0,1],[1,0]]"]`` -> typed parameters."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ArgumentError(f"parameter {item!r} is not key=value", field="--param")
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


def add_progress(p: argparse.ArgumentParser) -> None:
    """Add ``--no-progress``."""
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")


def add_ngff_version(p: argparse.ArgumentParser, default: str | None = "0.5",
                     help_text: str = "NGFF version to write (default 0.5)") -> None:
    """Add ``--ngff-version`` (and its hidden old spelling ``--version``)."""
    p.add_argument("--ngff-version", choices=("0.4", "0.5"), default=default, help=help_text)
    # the old spelling of some commands; hidden, as `voxzarr --version` is the program's
    p.add_argument("--version", dest="ngff_version", choices=("0.4", "0.5"),
                   help=argparse.SUPPRESS)


def add_select(p: argparse.ArgumentParser) -> None:
    """Add ``--select DIM=INDEX`` (repeatable); :func:`apply_select` applies it."""
    p.add_argument("--select", action="append", metavar="DIM=INDEX", default=None,
                   help="pick one index of an axis first, repeatable (t=3, c=0, z=10)")


def apply_select(img: Any, items: Sequence[str] | None) -> Any:
    """Apply ``--select t=3 --select c=0`` to an image."""
    picks: dict[str, int] = {}
    for item in items or []:
        dim, sep, text = item.partition("=")
        if not sep or not text.strip().lstrip("-").isdigit():
            raise ArgumentError(f"expected DIM=INDEX, found {item!r}", field="--select")
        if dim.strip() not in img.dims:
            raise ArgumentError(f"expected one of the image's axes {tuple(img.dims)}, found "
                                f"{dim.strip()!r}", field="--select")
        picks[dim.strip()] = int(text)
    return img.isel(picks) if picks else img


def open_level(path: str, level: str) -> Any:
    """Open level ``level`` (an index or a path, as typed) of the image at ``path``."""
    from ..io import open_image

    return open_image(path, level=int(level) if level.isdigit() else level)


def save_figure(fig: Any, out: str, overwrite: bool) -> None:
    """Save a matplotlib figure; an existing file only with ``--overwrite``."""
    from pathlib import Path

    from ..errors import OverwriteError

    target = Path(out)
    if target.exists() and not overwrite:
        raise OverwriteError("already exists; pass --overwrite to replace it", path=target)
    fig.savefig(target, dpi=150, bbox_inches="tight")


def progress_flag(args: argparse.Namespace) -> bool | None:
    """The API's ``progress=``: False for ``--no-progress``, else None (the default)."""
    return False if getattr(args, "no_progress", False) else None


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON (anything JSON does not know as its ``str``)."""
    print(json.dumps(obj, indent=2, default=str))


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


@contextmanager
def _as_is() -> Iterator[None]:
    yield


# ----------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    """The ``voxzarr`` parser: one subparser per registered command.

    Each subparser's defaults carry the command's ``run`` (``_run``) and the subparser itself
    (``_parser``, whose flags word the command's messages).
    """
    parser = argparse.ArgumentParser(
        prog="voxzarr",
        description="OME-Zarr microscopy images with physical geometry: inspect, convert, "
        "validate, resample, build pyramids, halos and series layouts.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"voxzarr {__version__}")
    _add_cluster_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, setup) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_run=setup(p), _parser=p)
        _add_cluster_options(p)  # also accepted after the subcommand
    return parser


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    """``--scheduler`` / ``--workers``: run the command's dask work on a distributed cluster;
    ``--debug``: tracebacks and warnings as Python shows them.

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
    """Run ``voxzarr ARGV`` and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The command's exit status: 0 on success, 1 on an error (printed as one line on
        stderr unless ``--debug``), 2 without a command, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    prefix = f"voxzarr {args.command}"
    debug = bool(getattr(args, "debug", False))
    sub = getattr(args, "_parser", None)
    try:
        from .._cluster import cluster

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
