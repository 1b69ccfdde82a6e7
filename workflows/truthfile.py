"""One image with its ground truth in one ``.npz`` file: what a physics simulation knows.

A truth file holds an image and the :class:`~ferrogym.workflows.synthetic.GroundTruth` of every
column centred in it, in the conventions of the synthetic generator (DESIGN.md section 4): (x, y)
pixels, x = column, y = row, pixel centres at integers; ``b_displacement`` = B minus the centre
of its four A neighbours; variants 0..3 per ``POLARIZATION_DIRECTIONS``, 4 antipolar, 5
substrate. It is a plain numpy archive (read without pickles) of these arrays:

==================== ================== ====================================================
key                  shape, dtype       meaning
==================== ================== ====================================================
``format``           (), str            ``"ferrogym-truth/1"``
``image``            (rows, cols)       counts (uint16) or a noise-free image (float32)
``xy``               (N, 2), float      column positions (x, y) in px, A columns first
``sublattice``       (N,), str          ``"A"`` or ``"B"``
``variant``          (N,), int          true variant of each column
``b_displacement``   (N, 2), float      B off-centring in px (0 for A columns)
``wall_mask``        (rows, cols), bool pixels within half a unit cell of a domain wall
``pixel_size_pm``    (), float          sampling, pm per px
``lattice_constant`` (), float          lattice constant in px
``parameters``       (), str            JSON of how the image was made (species, thickness,
                                        probe, detector, phonons, dose, software versions)
==================== ================== ====================================================
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .synthetic import GroundTruth

__all__ = ["FORMAT", "TruthFile", "load_truth", "save_truth"]

FORMAT = "ferrogym-truth/1"
_KEYS = ("format", "image", "xy", "sublattice", "variant", "b_displacement", "wall_mask", "pixel_size_pm",
         "lattice_constant", "parameters")


@dataclass(frozen=True)
class TruthFile:
    """An image (float64), its ground truth and the parameters that made it."""

    image: np.ndarray
    truth: GroundTruth
    parameters: dict


def save_truth(path, image: np.ndarray, truth: GroundTruth, parameters: dict) -> Path:
    """Write ``image`` (uint16 counts or float32), ``truth`` and ``parameters`` (JSON-able) to ``path``."""
    image = np.asarray(image)
    if image.dtype not in (np.uint16, np.float32):
        raise InputError(f"truth file image is {image.dtype}; store counts as uint16 or a noise-free image as float32")
    path = Path(path)
    np.savez_compressed(
        path, format=np.array(FORMAT), image=image, xy=truth.xy.astype(float),
        sublattice=truth.sublattice.astype("<U1"), variant=truth.variant.astype(np.int16),
        b_displacement=truth.b_displacement.astype(float), wall_mask=truth.wall_mask.astype(bool),
        pixel_size_pm=np.array(float(truth.pixel_size_pm)), lattice_constant=np.array(float(truth.lattice_constant_px)),
        parameters=np.array(json.dumps(parameters, sort_keys=True)),
    )
    return path


def load_truth(path) -> TruthFile:
    """Read a truth file written by :func:`save_truth`; InputError (one line) for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"truth file {str(path)!r} does not exist; check the path")
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"truth file {str(path)!r} is not a numpy .npz archive ({error}); "
                         "write it with ferrogym.workflows.truthfile.save_truth") from error
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise InputError(f"truth file {str(path)!r} lacks {missing}; write it with save_truth")
    if str(data["format"]) != FORMAT:
        raise InputError(f"truth file {str(path)!r} has format {str(data['format'])!r}; this ferrogym reads {FORMAT!r}")
    image, xy = data["image"], data["xy"]
    n = len(xy)
    shapes = {"image": image.ndim == 2, "xy": xy.shape == (n, 2), "sublattice": data["sublattice"].shape == (n,),
              "variant": data["variant"].shape == (n,), "b_displacement": data["b_displacement"].shape == (n, 2),
              "wall_mask": data["wall_mask"].shape == image.shape}
    wrong = [key for key, ok in shapes.items() if not ok]
    if wrong:
        raise InputError(f"truth file {str(path)!r}: {wrong} do not fit a 2-D image and {n} columns; rewrite it")
    try:
        parameters = json.loads(str(data["parameters"]))
    except json.JSONDecodeError as error:
        raise InputError(f"truth file {str(path)!r}: its parameters are not JSON ({error})") from error
    truth = GroundTruth(
        xy=xy.astype(float), sublattice=data["sublattice"].astype("<U1"), variant=data["variant"].astype(int),
        b_displacement=data["b_displacement"].astype(float), wall_mask=data["wall_mask"].astype(bool),
        pixel_size_pm=float(data["pixel_size_pm"]), lattice_constant_px=float(data["lattice_constant"]),
    )
    return TruthFile(image.astype(np.float64), truth, parameters)
