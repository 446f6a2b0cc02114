"""``voxzarr view``: serve a store over HTTP for web viewers and print their links
(:func:`voxzarr.view.serve`).
"""

from __future__ import annotations

import argparse

from ._core import Run, command


@command("view", "serve an OME-Zarr store over HTTP on this machine and print links that open "
         "it in neuroglancer, vizarr or a built-in preview page; Ctrl-C stops")
def setup(p: argparse.ArgumentParser) -> Run:
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
        from ..view import serve

        return serve(args.path, host=args.host, port=args.port, viewer=args.viewer,
                     open_browser=args.open, verbose=args.verbose)

    return run
