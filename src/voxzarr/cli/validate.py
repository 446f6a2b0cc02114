"""``voxzarr validate``: check a store or a group's JSON against NGFF; the exit status
is the verdict (0 valid, 1 invalid, 3 unsupported version).
"""

from __future__ import annotations

import argparse

from ._core import Run, command, print_json


@command("validate", "check an OME-Zarr store (or a group's JSON) against NGFF 0.4 / 0.5 / "
         "0.6rc0; exit 0 valid, 1 invalid, 3 unsupported version")
def setup(p: argparse.ArgumentParser) -> Run:
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
        from ..ngff.validate import validate

        result = validate(args.path, version=args.ngff_version, kind=args.kind,
                          strict=args.strict, schema_only=args.schema_only)
        if args.json:
            d = result.to_dict()
            print_json({"valid": d["valid"], "status": d["status"], "message": d["message"],
                         "issues": d["issues"]})
        else:
            print(result.message)
        # a version validate cannot check is no verdict: its own exit status
        return {"valid": 0, "invalid": 1, "unsupported": 3}[result.status]

    return run
