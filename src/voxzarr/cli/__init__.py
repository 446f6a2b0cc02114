"""The ``voxzarr`` command line: one subcommand per job, each with ``--help``.

Each subcommand is a module of this package (``voxzarr.cli.series_map`` is
``voxzarr series-map``) whose ``setup(parser)`` is registered with :func:`command`: it adds the
subcommand's options and returns its ``run(args) -> int``, which calls the public API and
returns the exit status. Importing this package imports every command module, which registers
it; the order of the imports below is the order of ``voxzarr --help``. ``_core`` holds what the
commands share: the registry, argument helpers, message wording, :func:`build_parser` and
:func:`main`.

Options share one vocabulary across commands (``--ngff-version``, ``--chunks``, ``--device``,
``--filter``, ``--select``, ``--overwrite``, ``--no-progress``) and list their choices in
``--help``. Start-up stays light: command modules import the standard library and ``_core``
only, and the heavy modules inside ``run``, so ``voxzarr --help`` loads no xarray or dask.

Errors and warnings become one line on stderr, worded for the command line (a message's
``keyword=`` advice is rewritten into the command's flag, :func:`cli_words`), with no traceback
unless ``--debug``. Exit status 0 only on success.
"""

from __future__ import annotations

# each import registers one command, in the order of `voxzarr --help`
# isort: off
from . import (  # noqa: F401
    info,
    demo,
    png,
    validate,
    view,
    convert,
    upgrade,
    pyramid,
    halo,
    filter,
    isotropic,
    series,
    show,
    series_map,
    series_traces,
)
# isort: on
from ._core import (
    FILTER_MODES,
    FILTER_NAMES,
    PYRAMID_METHODS,
    RESAMPLE_MODES,
    SERIES_STATS,
    build_parser,
    cli_words,
    command,
    main,
)

__all__ = ["main", "command", "build_parser", "cli_words", "FILTER_NAMES", "PYRAMID_METHODS",
           "FILTER_MODES", "RESAMPLE_MODES", "SERIES_STATS"]
