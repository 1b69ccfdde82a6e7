"""Read microscope images and atom-column positions into checked numpy arrays.

Everything the rest of ferrogym receives from disk passes through here, so every bad input
stops here with a message that names the file, what is wrong and what to do about it.
Images are read with RosettaSciIO (``rsciio``) except ``.npy``; positions are ``.npy`` or
plain text. Coordinates follow the project convention: ``(x, y)`` in pixels, x = column,
y = row. Images are returned as stored (rows, columns); nothing is transposed or flipped.
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.truthfile import load_truth

MIN_IMAGE_SIDE = 16
MIN_POSITIONS = 10

# extension -> (rsciio plugin module, format name used in messages)
_RSCIIO_READERS = {
    ".tif": ("tiff", "TIFF"),
    ".tiff": ("tiff", "TIFF"),
    ".hspy": ("hspy", "HyperSpy HDF5"),
    ".hdf5": ("hspy", "HyperSpy HDF5"),
    ".h5": ("hspy", "HyperSpy HDF5"),
    ".dm3": ("digitalmicrograph", "Gatan DigitalMicrograph"),
    ".dm4": ("digitalmicrograph", "Gatan DigitalMicrograph"),
    ".emd": ("emd", "EMD (Berkeley or Velox)"),
    ".ser": ("tia", "FEI TIA"),
    ".emi": ("tia", "FEI TIA"),
    ".mrc": ("mrc", "MRC"),
    ".png": ("image", "PNG"),
    ".jpg": ("image", "JPEG"),
    ".jpeg": ("image", "JPEG"),
    ".bmp": ("image", "BMP"),
    ".gif": ("image", "GIF"),
}
_IMAGE_EXTENSIONS = (".npy", *_RSCIIO_READERS, ".npz")
_POSITION_EXTENSIONS = (".npy", ".csv", ".txt")
_POSITION_COLUMNS = ("x", "y", "sublattice")

_PM_PER_UNIT = {
    **dict.fromkeys(("pm", "picometer", "picometers", "picometre", "picometres"), 1.0),
    **dict.fromkeys(("å", "a", "ang", "angstrom", "angstroms", "ångström"), 1e2),
    **dict.fromkeys(("nm", "nanometer", "nanometers", "nanometre", "nanometres"), 1e3),
    **dict.fromkeys(
        ("µm", "μm", "um", "\\u00b5m", "micron", "microns", "micrometer", "micrometers"), 1e6
    ),
    "mm": 1e9,
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), 1e12),
}
_UNDEFINED_UNITS = (None, "", "<undefined>")


@dataclass(frozen=True)
class ImageData:
    """A checked 2-D image.

    Attributes
    ----------
    array : numpy.ndarray
        2-D float64, C-contiguous, finite, with contrast; (rows, columns) as stored.
    pixel_size_pm : float or None
        Pixel size in picometres from the file's calibration; None when unknown.
    source : str
        The path it was read from, or a short description.
    """

    array: np.ndarray
    pixel_size_pm: float | None
    source: str


@dataclass(frozen=True)
class PositionsData:
    """Checked atom-column positions.

    Attributes
    ----------
    xy : numpy.ndarray
        (N, 2) float64 ``(x, y)`` pixel positions, x = column, y = row; all finite.
    sublattice : numpy.ndarray or None
        (N,) ``'<U1'`` array of ``"A"``/``"B"``, or None when the input has no such column.
    source : str
        The path it was read from, or a short description.
    """

    xy: np.ndarray
    sublattice: np.ndarray | None
    source: str


# ----------------------------------------------------------------------------- shared


def _existing_file(path, supported: tuple[str, ...], what: str) -> Path:
    """Return `path` as a Path after checking it is an existing file with a supported suffix."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{what} file {str(path)!r} does not exist (resolved to {str(path.resolve())!r}); "
            "check the path and the working directory."
        )
    if not path.is_file():
        raise InputError(f"{what} path {str(path)!r} is a directory, not a file; pass a file.")
    if path.suffix.lower() not in supported:
        raise InputError(
            f"{what} file {str(path)!r} has unsupported extension {path.suffix!r}; "
            f"supported extensions: {', '.join(supported)}. Convert the file to one of them."
        )
    return path


def _read_npy(path: Path) -> np.ndarray:
    """Load a ``.npy`` file without pickles, wrapping numpy's errors in an InputError."""
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(
            f"could not read {str(path)!r} as a .npy array ({type(exc).__name__}: {exc}); "
            "save it with numpy.save from a plain numeric array (object arrays are refused)."
        ) from exc


def _count_text(n: int, noun: str) -> str:
    """Return '1 pixel' / '3 pixels' style text."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ----------------------------------------------------------------------------- images


def load_image(path, frame: int | None = None) -> ImageData:
    """Read one 2-D image and its pixel size from a file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, a truth file ``.npz`` (:mod:`~ferrogym.workflows.truthfile`: its image and
        pixel size) or any extension in the RosettaSciIO table of this module (TIFF, HyperSpy,
        DigitalMicrograph, EMD, TIA, MRC, PNG/JPEG/BMP/GIF).
    frame : int, optional
        Index of the image to take from a 3-D stack (first axis). Must be None for a 2-D image.

    Returns
    -------
    ImageData
        The image as stored (rows, columns), float64, and its pixel size in pm or None.

    Notes
    -----
    A file with several signals gives its first one that is an image (or an image stack);
    a warning names the ones skipped. Calibrations without units (HyperSpy files written
    without units, such as Atomap's) are taken to be in nm, with a warning.
    """
    path = _existing_file(path, _IMAGE_EXTENSIONS, "image")
    source = str(path)
    if path.suffix.lower() == ".npy":
        data, pixel_size_pm = _read_npy(path), None
    elif path.suffix.lower() == ".npz":
        truth_file = load_truth(path)
        data, pixel_size_pm = truth_file.image, truth_file.truth.pixel_size_pm
    else:
        data, pixel_size_pm = _read_with_rsciio(path)
    image = validate_image(_select_frame(data, frame, source), source)
    return ImageData(image, pixel_size_pm, source)


def validate_image(array, source: str = "image array") -> np.ndarray:
    """Check an image and return it as a float64, C-contiguous copy.

    The checks are the ones every image source must pass: numeric and real, 2-D, at least
    ``MIN_IMAGE_SIDE`` pixels on each side, finite, and not constant.

    Parameters
    ----------
    array : array_like
        The image, (rows, columns).
    source : str
        How to name the image in error messages.

    Returns
    -------
    numpy.ndarray
        A new float64 C-contiguous array.
    """
    data = np.asarray(array)
    _check_image_dtype(data, source)
    _check_image_shape(data, source)
    image = np.array(data, dtype=np.float64, order="C")
    _check_image_finite(image, source)
    _check_image_contrast(image, source)
    return image


def _read_with_rsciio(path: Path) -> tuple[np.ndarray, float | None]:
    """Read `path` with the RosettaSciIO plugin of its extension; return data and pixel size."""
    module, format_name = _RSCIIO_READERS[path.suffix.lower()]
    reader = importlib.import_module(f"rsciio.{module}").file_reader
    try:
        signals = reader(str(path), lazy=False)
    except Exception as exc:
        raise InputError(
            f"could not read {str(path)!r} with RosettaSciIO's {format_name} reader "
            f"({type(exc).__name__}: {exc}); check that it is a complete {format_name} file, "
            "or export the image as .npy or .tif."
        ) from exc
    signal = _pick_image_signal(signals, str(path))
    return np.asarray(signal["data"]), _pixel_size_pm(signal, str(path))


def _is_image_like(signal: dict) -> bool:
    """Whether an rsciio signal is an image or an image stack (two signal axes)."""
    n_signal_axes = sum(not axis.get("navigate", False) for axis in signal["axes"])
    return np.ndim(signal["data"]) == 2 or n_signal_axes == 2


def _describe_signal(signal: dict) -> str:
    """Short text naming an rsciio signal by title and shape, for messages."""
    title = signal.get("metadata", {}).get("General", {}).get("title") or "untitled"
    return f"{title!r} shape {tuple(np.shape(signal['data']))}"


def _pick_image_signal(signals: list[dict], source: str) -> dict:
    """Return the first image-like signal of a file; warn when others are skipped."""
    images = [signal for signal in signals if _is_image_like(signal)]
    if not images:
        found = "; ".join(_describe_signal(signal) for signal in signals) or "nothing"
        raise InputError(
            f"{source} holds no 2-D image (found: {found}); a single 2-D image is needed. "
            "Export the image you want to analyse on its own (.npy or .tif)."
        )
    if len(signals) > 1:
        others = [signal for signal in signals if signal is not images[0]]
        skipped = "; ".join(_describe_signal(signal) for signal in others)
        warnings.warn(
            f"{source} holds {len(signals)} signals; using the first image "
            f"{_describe_signal(images[0])} and skipping: {skipped}. "
            "Export the one you want on its own to choose another.",
            UserWarning,
            stacklevel=4,
        )
    return images[0]


def _select_frame(data: np.ndarray, frame, source: str) -> np.ndarray:
    """Take frame `frame` of a 3-D stack; refuse a missing or out-of-range frame."""
    if data.ndim == 3:
        n_frames = data.shape[0]
        if frame is None:
            raise InputError(
                f"{source} holds a stack of {n_frames} images, shape {data.shape}; a single 2-D "
                f"image is needed: pick one with frame=k (--frame k on the command line), "
                f"0 <= k <= {n_frames - 1}."
            )
        is_index = isinstance(frame, (int, np.integer)) and not isinstance(frame, bool)
        if not is_index or not 0 <= frame < n_frames:
            problem = "out of range" if is_index else "not an integer"
            raise InputError(
                f"frame={frame!r} is {problem} for {source}, a stack of {n_frames} images "
                f"(shape {data.shape}); pass an integer 0 <= frame <= {n_frames - 1}."
            )
        return data[frame]
    if frame is not None and data.ndim == 2:
        raise InputError(
            f"frame={frame!r} was given, but {source} holds a single 2-D image of shape "
            f"{data.shape}, not a stack; leave frame=None."
        )
    return data


def _check_image_dtype(data: np.ndarray, source: str) -> None:
    """Refuse colour, complex and non-numeric images."""
    if data.dtype.names is not None:
        raise InputError(
            f"{source} is a colour (RGB) image with different channels; a single-channel "
            "intensity image is needed. Save the original grey-scale data instead."
        )
    if data.dtype.kind == "c":
        raise InputError(
            f"{source} has complex values (dtype {data.dtype}); an intensity image is needed. "
            "Pass its real part or magnitude (np.abs)."
        )
    if data.dtype.kind not in "biuf":
        raise InputError(
            f"{source} is not numeric (dtype {data.dtype}); an image of numbers is needed."
        )


def _check_image_shape(data: np.ndarray, source: str) -> None:
    """Require a 2-D image at least MIN_IMAGE_SIDE pixels on each side."""
    if data.ndim == 3:
        raise InputError(
            f"{source} is a stack of {data.shape[0]} images, shape {data.shape}; a single 2-D "
            f"image is needed: pick one frame, e.g. array[k] with 0 <= k <= {data.shape[0] - 1}."
        )
    if data.ndim != 2:
        raise InputError(
            f"{source} is {data.ndim}-D with shape {data.shape}; a single 2-D image "
            "(rows, columns) is needed. Select or reshape one image before passing it."
        )
    if min(data.shape) < MIN_IMAGE_SIDE:
        raise InputError(
            f"{source} is too small: {data.shape[0]} x {data.shape[1]} pixels; at least "
            f"MIN_IMAGE_SIDE = {MIN_IMAGE_SIDE} pixels are needed on each side. "
            "Use a larger image or field of view."
        )


def _check_image_finite(image: np.ndarray, source: str) -> None:
    """Refuse NaN and infinite pixels, saying how many there are."""
    n_nan = int(np.isnan(image).sum())
    n_inf = int(np.isinf(image).sum())
    if n_nan or n_inf:
        raise InputError(
            f"{source} has {_count_text(n_nan, 'NaN pixel')} and "
            f"{_count_text(n_inf, 'infinite pixel')} out of {image.size}; every pixel must be "
            "finite. Crop to a region without them or replace them "
            "(e.g. inpaint, or np.nan_to_num with a sensible value) first."
        )


def _check_image_contrast(image: np.ndarray, source: str) -> None:
    """Refuse a constant image: with no contrast there are no atom columns to find."""
    if image.min() == image.max():
        raise InputError(
            f"{source} is constant (every pixel is {float(image.flat[0]):g}): there is no "
            "contrast, so there are no atom columns to find. Check that the right file, signal "
            "and frame were loaded."
        )


# ----------------------------------------------------------------------------- pixel size


def _pixel_size_pm(signal: dict, source: str) -> float | None:
    """Pixel size in pm from the two image axes of an rsciio signal, or None if unknown.

    Unit-less scales of 1 mean "not calibrated"; other unit-less scales are read as nm
    (the HyperSpy/Atomap habit) with a warning. Unknown units (reciprocal space, "px") and
    non-uniform axes give None.
    """
    axes = signal["axes"][-2:]  # rsciio orders axes like the array: image axes last
    if len(axes) != 2 or any("scale" not in axis for axis in axes):
        return None
    scales = [abs(float(axis["scale"])) for axis in axes]
    units = [_axis_units(axis, signal) for axis in axes]
    if all(unit in _UNDEFINED_UNITS for unit in units):
        if all(scale == 1.0 for scale in scales):
            return None
        warnings.warn(
            f"{source}: the image axes have scale {scales} but no units; assumed nm "
            "(HyperSpy/Atomap habit). If that is wrong, set the units in the file.",
            UserWarning,
            stacklevel=4,
        )
        units = ["nm", "nm"]
    factors = [_PM_PER_UNIT.get(str(unit).strip().lower()) for unit in units]
    if None in factors:
        warnings.warn(
            f"{source}: image axis units {units} are not lengths this reader knows "
            f"({', '.join(sorted(_PM_PER_UNIT))}); pixel size set to None.",
            UserWarning,
            stacklevel=4,
        )
        return None
    return _square_pixel_pm([s * f for s, f in zip(scales, factors)], source)


def _axis_units(axis: dict, signal: dict):
    """Units of one axis; fall back to the ImageJ description, whose units rsciio drops."""
    units = axis.get("units")
    if units in _UNDEFINED_UNITS:
        return _imagej_unit(signal.get("original_metadata", {}))
    return units


def _imagej_unit(original_metadata: dict) -> str | None:
    """The ``unit=`` entry of an ImageJ TIFF description, or None."""
    description = original_metadata.get("ImageDescription")
    if not isinstance(description, str) or not description.startswith("ImageJ="):
        return None
    for line in description.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "unit":
            return value.strip()
    return None


def _square_pixel_pm(sizes_pm: list[float], source: str) -> float | None:
    """The common pixel size of both axes in pm; None if invalid or not square within 1 %."""
    if not all(math.isfinite(s) and s > 0 for s in sizes_pm):
        return None
    if not math.isclose(sizes_pm[0], sizes_pm[1], rel_tol=0.01):
        warnings.warn(
            f"{source}: pixels are not square ({sizes_pm[0]:.4g} pm x {sizes_pm[1]:.4g} pm, "
            "rows x columns); pixel size set to None. Resample to square pixels first.",
            UserWarning,
            stacklevel=5,
        )
        return None
    return float(np.mean(sizes_pm))


# ----------------------------------------------------------------------------- positions


def load_positions(path) -> PositionsData:
    """Read atom-column positions from ``.npy``, ``.csv`` or ``.txt``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``: an (N, 2) or (N, 3) numeric array, columns x, y[, sublattice] with
        sublattice 0 = A, 1 = B. ``.csv``/``.txt``: comma- or whitespace-delimited, lines
        starting with ``#`` ignored, an optional header naming the columns ``x``, ``y`` and
        optionally ``sublattice`` in any order; without a header the columns are
        x, y[, sublattice]. Sublattice values are "A"/"B" (any case) or 0/1.

    Returns
    -------
    PositionsData
        Checked (x, y) pixel positions and sublattice labels (None without that column).
    """
    path = _existing_file(path, _POSITION_EXTENSIONS, "positions")
    source = str(path)
    if path.suffix.lower() == ".npy":
        xy, sublattice = _split_position_array(_read_npy(path), source)
    else:
        xy, sublattice = _read_position_table(path)
    return validate_positions(xy, sublattice, source)


def validate_positions(xy, sublattice=None, source: str = "positions array") -> PositionsData:
    """Check positions and sublattice labels; return them as a PositionsData of copies.

    Positions must be numeric, (N, 2), finite and at least ``MIN_POSITIONS``; any finite
    value is accepted, negative ones included (a refined column may sit just outside the
    image). Sublattice values may be "A"/"B" (any case) or 0/1 and become ``'<U1'``.

    Parameters
    ----------
    xy : array_like
        (N, 2) ``(x, y)`` pixel positions, x = column, y = row.
    sublattice : array_like, optional
        (N,) labels, or None.
    source : str
        How to name the positions in error messages.

    Returns
    -------
    PositionsData
    """
    coordinates = _checked_coordinates(xy, source)
    if sublattice is None:
        return PositionsData(coordinates, None, source)
    labels = _sublattice_labels(sublattice, len(coordinates), source)
    return PositionsData(coordinates, labels, source)


def _split_position_array(array: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Split an (N, 2) or (N, 3) array into coordinates and optional sublattice column."""
    if array.ndim != 2 or array.shape[1] not in (2, 3):
        raise InputError(
            f"{source} holds an array of shape {array.shape}; expected (N, 2) with columns "
            "x, y or (N, 3) with columns x, y, sublattice (0 = A, 1 = B)."
        )
    return array[:, :2], (array[:, 2] if array.shape[1] == 3 else None)


def _checked_coordinates(xy, source: str) -> np.ndarray:
    """Return (N, 2) finite float64 coordinates, at least MIN_POSITIONS of them."""
    array = np.asarray(xy)
    if array.dtype.kind not in "iuf":
        raise InputError(
            f"{source} has non-numeric coordinates (dtype {array.dtype}); x and y must be "
            "numbers in pixels."
        )
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputError(
            f"{source} has shape {array.shape}; expected (N, 2): one (x, y) pixel position "
            "per row, x = column, y = row."
        )
    coordinates = np.array(array, dtype=np.float64, order="C")
    n_bad = int((~np.isfinite(coordinates)).any(axis=1).sum())
    if n_bad:
        raise InputError(
            f"{source} has {_count_text(n_bad, 'position')} with NaN or infinite coordinates "
            f"out of {len(coordinates)}; drop those rows (e.g. xy[np.isfinite(xy).all(axis=1)])."
        )
    if len(coordinates) < MIN_POSITIONS:
        raise InputError(
            f"{source} holds {_count_text(len(coordinates), 'position')}; at least "
            f"MIN_POSITIONS = {MIN_POSITIONS} are needed. Pass the positions of a larger region."
        )
    return coordinates


def _sublattice_label(value: str) -> str | None:
    """Map one sublattice value ("a", " B", "0", "1.0") to "A"/"B"; None if unknown."""
    text = value.strip().upper()
    if text in ("A", "B"):
        return text
    try:
        number = float(text)
    except ValueError:
        return None
    return {0.0: "A", 1.0: "B"}.get(number)


def _sublattice_labels(sublattice, n_positions: int, source: str) -> np.ndarray:
    """Return sublattice values as an (N,) '<U1' array of "A"/"B"; refuse anything else."""
    values = np.asarray(sublattice)
    if values.shape != (n_positions,):
        raise InputError(
            f"{source}: sublattice has shape {values.shape} but there are {n_positions} "
            f"positions; give one label per position, shape ({n_positions},)."
        )
    unique, inverse = np.unique(values.astype(str), return_inverse=True)
    labels = [_sublattice_label(value) for value in unique]
    unknown = [str(value) for value, label in zip(unique, labels) if label is None]
    if unknown:
        raise InputError(
            f"{source} has unknown sublattice values {unknown[:10]}"
            f"{' ...' if len(unknown) > 10 else ''}; use 'A'/'B' (any case) or 0 (A) / 1 (B)."
        )
    return np.array(labels, dtype="<U1")[inverse.reshape(-1)]


# ----------------------------------------------------------------------------- text tables


def _read_position_table(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse a delimited text table of positions into coordinates and optional labels."""
    source = str(path)
    rows = _table_rows(path)
    names, rows = _table_header(rows, source)
    for line_number, fields in rows:
        if len(fields) != len(names):
            raise InputError(
                f"{source} line {line_number} has {len(fields)} fields; expected "
                f"{len(names)} ({', '.join(names)}), as on the first line."
            )
    columns = {name: [(n, fields[i]) for n, fields in rows] for i, name in enumerate(names)}
    xy = np.column_stack([_parse_coordinates(columns[name], name, source) for name in ("x", "y")])
    sublattice = columns.get("sublattice")
    return xy, (None if sublattice is None else np.array([value for _, value in sublattice]))


def _table_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-empty, non-comment lines as (line number, fields); comma or whitespace delimited."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"could not read {str(path)!r} as UTF-8 text ({exc}); positions must be a plain "
            "text table (or save them with numpy.save as .npy)."
        ) from exc
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            fields = line.split(",") if "," in line else line.split()
            rows.append((line_number, [field.strip().strip("'\"") for field in fields]))
    return rows


def _is_number(text: str) -> bool:
    """Whether `text` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _table_header(rows: list, source: str) -> tuple[tuple[str, ...], list]:
    """Column names from a header line (no numeric field) or from the column count."""
    if not rows:
        return ("x", "y"), rows
    line_number, first = rows[0]
    if any(_is_number(field) for field in first):
        defaults = {2: ("x", "y"), 3: ("x", "y", "sublattice")}
        if len(first) not in defaults:
            raise InputError(
                f"{source} line {line_number} has {len(first)} columns; expected 2 (x, y) or "
                "3 (x, y, sublattice), or a header line naming the columns."
            )
        return defaults[len(first)], rows
    names = tuple(field.lower() for field in first)
    known = set(names) <= set(_POSITION_COLUMNS) and {"x", "y"} <= set(names)
    if not known or len(set(names)) != len(names):
        raise InputError(
            f"{source} header (line {line_number}) names columns {list(first)}; expected x and "
            "y and optionally sublattice, each once, in any order."
        )
    return names, rows[1:]


def _parse_coordinates(column: list[tuple[int, str]], name: str, source: str) -> np.ndarray:
    """Parse one coordinate column to float64, listing the values that are not numbers."""
    bad = [f"{value!r} (line {n})" for n, value in column if not _is_number(value)]
    if bad:
        raise InputError(
            f"{source} column {name!r} has {_count_text(len(bad), 'non-numeric value')}: "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; coordinates must be "
            "numbers in pixels."
        )
    return np.array([float(value) for _, value in column], dtype=np.float64)
