"""HyperSpy and Atomap, in and out: the optional extra ``ferrogym[interop]``.

- In: a HyperSpy ``Signal2D`` is read with its axes calibration (:func:`image_from_signal`),
  duck-typed, so reading one needs no HyperSpy import here.
- Out: :func:`to_hyperspy` gives the image and maps of the answer (label, phase, B-site
  displacement) as ``Signal2D`` objects with the image's axes; :func:`to_atomap` gives each
  sublattice as an Atomap ``Sublattice`` on the calibrated image, for Atomap's own refinement,
  plots and analyses.

HyperSpy and Atomap are not core dependencies (they bring numba and a large tree); without them
the exporters raise :class:`MissingExtra` saying how to install them.
"""

from __future__ import annotations

import importlib

import numpy as np

from .answer import Answer
from .cells import pixel_map
from .errors import InputError
from .io import ImageData, _pixel_size_pm, _select_frame, validate_image

INSTALL = 'pip install "ferrogym[interop]"'


class MissingExtra(ImportError):
    """An optional package (HyperSpy, Atomap) is not installed; the message says how to get it."""


def is_signal(obj) -> bool:
    """Whether ``obj`` looks like a HyperSpy signal (data and an axes manager)."""
    return hasattr(obj, "axes_manager") and hasattr(obj, "data")


def image_from_signal(signal, frame: int | None = None) -> ImageData:
    """The image of a HyperSpy ``Signal2D`` with its pixel size from the signal axes.

    A stack (a navigation axis) needs ``frame``; the axes' scale and units give the pixel size
    as for a file (unit-less scales read as nm, with a warning; see
    :func:`~ferrogym.workflows.io.load_image`).
    """
    title = getattr(getattr(signal.metadata, "General", None), "title", "") or "untitled"
    source = f"HyperSpy signal {title!r}"
    manager = signal.axes_manager
    if manager.signal_dimension != 2:
        raise InputError(f"{source} has {manager.signal_dimension} signal axes; a Signal2D (an image) is needed. "
                         "Use signal.as_signal2D((0, 1)) or pick an image from it")
    if manager.navigation_dimension > 1:
        raise InputError(f"{source} has {manager.navigation_dimension} navigation axes; give one image or a stack "
                         "of images (one navigation axis)")
    x_axis, y_axis = manager.signal_axes
    axes = [{"scale": axis.scale, "units": axis.units, "navigate": False} for axis in (y_axis, x_axis)]
    data = np.asarray(signal.data)
    pixel_size_pm = _pixel_size_pm({"axes": axes, "data": data, "metadata": {}}, source)
    image = validate_image(_select_frame(data, frame, source), source)
    return ImageData(image, pixel_size_pm, source)


def _extra(module: str):
    """Import ``module`` of the interop extra, or raise MissingExtra saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(f"{module.split('.')[0]} is not installed ({error}); it is an optional extra of "
                           f"ferrogym: {INSTALL}") from error


def answer_maps(answer: Answer, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Per-pixel maps of the answer over an image of ``shape``: each pixel its cell's value.

    ``label`` and ``phase`` (-1 unassigned or unknown, -2 outside every cell), and the B-site
    displacement ``b_displacement_x``, ``_y`` and its magnitude (pm where the pixel size is
    known, else px; NaN where undefined).
    """
    segmentation = answer.segmentation
    cells = answer.lattice.cell_sites
    displacement = answer.calibration.in_unit(answer.displacement_px[cells])
    maps = {"label": pixel_map(segmentation, shape, segmentation.labels, fill=-2),
            "phase": pixel_map(segmentation, shape, answer.phases[cells], fill=-2)}
    if answer.lattice.has_b_sites:
        maps["b_displacement_x"] = pixel_map(segmentation, shape, displacement[:, 0])
        maps["b_displacement_y"] = pixel_map(segmentation, shape, displacement[:, 1])
        maps["b_displacement"] = pixel_map(segmentation, shape, np.hypot(*displacement.T))
    return maps


def to_hyperspy(answer: Answer, image: np.ndarray, title: str = "ferrogym") -> dict:
    """The image and the answer's maps (:func:`answer_maps`) as HyperSpy ``Signal2D`` objects.

    Every signal has the image's axes: x and y in nm with the pixel size as scale where it is
    known, else in pixels; displacement maps name their unit (pm or px) in ``quantity``.
    """
    hs = _extra("hyperspy.api")
    if image is None:
        raise InputError("the HyperSpy export needs the image; positions alone have no pixel grid")
    unit = answer.calibration.unit
    signals = {"image": _signal(hs, image, f"{title}: image", answer)}
    for name, values in answer_maps(answer, image.shape).items():
        signal = _signal(hs, values, f"{title}: {name}", answer)
        if name.startswith("b_displacement"):
            signal.metadata.set_item("Signal.quantity", f"B-site displacement ({unit})")
        signals[name] = signal
    return signals


def _signal(hs, data: np.ndarray, title: str, answer: Answer):
    signal = hs.signals.Signal2D(np.asarray(data))
    signal.metadata.General.title = title
    calibration = answer.calibration
    for axis, name in zip(signal.axes_manager.signal_axes, ("x", "y")):
        axis.name = name
        axis.scale = calibration.pixel_size_pm / 1000 if calibration.known else 1.0
        axis.units = "nm" if calibration.known else "px"
    return signal


def to_atomap(answer: Answer, image: np.ndarray, title: str = "ferrogym") -> dict:
    """Each sublattice present as an Atomap ``Sublattice`` ({"A": ..., "B": ...}) on the image,
    with Atomap's (x, y) pixel positions and the image's calibration (nm per pixel)."""
    am = _extra("atomap.api")
    if image is None:
        raise InputError("the Atomap export needs the image; Atomap's sublattices are positions on an image")
    hs = _extra("hyperspy.api")
    signal = _signal(hs, image, f"{title}: image", answer)
    lattice = answer.lattice
    colours = {"A": "red", "B": "blue"}
    return {site: am.Sublattice(lattice.xy[lattice.sublattice == site], signal, name=site, color=colours[site])
            for site in ("A", "B") if (lattice.sublattice == site).any()}
