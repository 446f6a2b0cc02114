"""``voxzarr demo``: the bundled bead stack, written as OME-Zarr, made isotropic, and plotted.

The sample (``voxzarr/data/Bead_Image1_crop.tif``, fluorescent beads from the MPI-CBG Light
Microscopy Facility, CC-BY-4.0; see ``data/ATTRIBUTION.md``) is a (41, 150, 150) uint8 stack
with voxel size z 0.125, y = x 0.02249 micrometer, about 5.6 times coarser in z than in x.

Output folder rules: the demo writes into a folder it marks with a ``.voxzarr-demo`` file. It
writes into a folder that does not exist, is empty, or carries that marker (a previous demo
run, whose outputs are replaced). Any other existing folder is refused unless
``overwrite=True``; even then only the demo's own outputs are replaced, nothing else in the
folder is touched. So ``make demo`` can run again and again, and never clobbers user data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import xarray as xr
import zarr.storage

from ._progress import progress_keyword
from .errors import OverwriteError
from .io import open_image, to_ome_zarr

__all__ = ["SAMPLE", "MARKER", "DemoResult", "sample_path", "load_sample", "run_demo"]

#: file name of the bundled sample inside the package's ``data`` folder
SAMPLE = "Bead_Image1_crop.tif"
#: file that marks a folder as demo output (safe for the demo to replace)
MARKER = ".voxzarr-demo"

_OUTPUTS = ("bead.ome.zarr", "bead_isotropic.ome.zarr", "projections_before.png",
            "projections_after.png")


def sample_path() -> Path:
    """Path of the bundled bead stack (ships inside the package)."""
    return Path(str(files("voxzarr").joinpath("data", SAMPLE)))


def load_sample() -> xr.DataArray:
    """The bundled bead stack as a lazy image with physical coordinates.

    Read through :func:`voxzarr.convert` (into an in-memory store), so it carries exactly the
    geometry a conversion of the file gives.

    Returns
    -------
    xarray.DataArray
        dims ``(z, y, x)``, uint8, voxel size z 0.125, y = x 0.022491858 micrometer (the
        ImageJ resolution tag, 44.460534 pixels per micrometer), named ``"beads"``.
    """
    from .convert import convert

    store = zarr.storage.MemoryStore()
    convert(sample_path(), store, progress=False)
    return open_image(store).rename("beads")


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs."""

    folder: Path
    image: Path
    isotropic: Path
    projections_before: Path
    projections_after: Path


def _prepare(out: Path, overwrite: bool) -> None:
    """Apply the folder rules of the module docstring; create the folder and its marker."""
    if out.exists() and not out.is_dir():
        raise OverwriteError("exists and is not a folder; choose another --out", path=out)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists() and not overwrite:
        raise OverwriteError(
            "exists, is not empty and is not a previous demo output; choose another --out "
            "or pass --overwrite to replace the demo's files in it", path=out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `voxzarr demo`; the demo may replace this folder's "
                              "demo outputs\n")


def _describe(img: xr.DataArray) -> str:
    size = img.vox.voxel_size
    unit = next(iter(img.vox.units.values()), None) or ""
    shape = " x ".join(str(n) for n in img.shape)
    return (f"{shape} {img.dtype}, voxel size "
            + ", ".join(f"{d} {v:.4g}" for d, v in size.items()) + f" {unit}")


@progress_keyword
def run_demo(out: str | os.PathLike[str] = "demo-output", overwrite: bool = False, *,
             progress: bool | None = None, verbose: bool = True) -> DemoResult:
    """Convert the sample to NGFF 0.5, resample it to isotropic voxels, plot both.

    Writes ``bead.ome.zarr`` (the TIFF converted with :func:`voxzarr.convert`),
    ``bead_isotropic.ome.zarr`` (``img.vox.to_isotropic()``: voxels of the finest spacing,
    0.02249 micrometer, 228 x 150 x 150) and ``projections_before.png`` /
    ``projections_after.png`` (XY, XZ, ZY maximum projections at true physical aspect) into
    ``out``, then prints a short summary.

    Parameters
    ----------
    out
        Output folder (see the module docstring for when an existing one is accepted).
    overwrite
        Accept an existing, non-empty folder that is not a previous demo output.
    progress
        Show a progress bar (default: when stderr is a terminal and not under CI).
        ``progress_bar=`` is its deprecated old name.

    Returns
    -------
    DemoResult
        The paths written.
    """
    out = Path(out)
    _prepare(out, overwrite)
    result = DemoResult(out, *(out / name for name in _OUTPUTS))

    from .convert import convert

    convert(sample_path(), result.image, version="0.5", overwrite=True, progress=progress)
    img = open_image(result.image)
    to_ome_zarr(img.vox.to_isotropic(), result.isotropic, version="0.5", overwrite=True,
                progress=progress)
    iso = open_image(result.isotropic)

    for image, path, label in ((img, result.projections_before, "as acquired"),
                               (iso, result.projections_after, "isotropic")):
        fig = image.vox.projections(title=f"beads, {label}: max projections")
        fig.savefig(path, dpi=100)

    if verbose:
        print("voxzarr demo: fluorescent beads (MPI-CBG Light Microscopy Facility, CC-BY-4.0)")
        print(f"  as acquired  {_describe(img)}")
        print(f"  isotropic    {_describe(iso)}")
        print(f"output in {out}{os.sep}")
        for name in _OUTPUTS:
            if (out / name).exists():
                print(f"  {name}")
    return result
