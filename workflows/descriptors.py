"""Local descriptors per atom, in a registry: a new descriptor is added in one place.

A descriptor maps an image (or ``None`` for positions-only input) and an
:class:`~ferrogym.workflows.lattice.AtomLattice` to a feature matrix on a set of sites; it gets
its parameters from the configuration, and ``seed`` where it is random (the VAE). Sites
it cannot describe (a patch window leaving the image, a B site without a complete cage) are
left out and counted, never dropped silently: their labels become -1.

Windows are given in lattice constants and converted to an odd number of pixels, so that the
patch is centred exactly (with bilinear sub-pixel sampling) on the refined atom position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from .lattice import AtomLattice


class DescriptorUnavailable(Exception):
    """This descriptor cannot describe this input (no image, no B sites...); not a user error."""


@dataclass(frozen=True)
class Features:
    """Descriptor values on a set of sites.

    Attributes
    ----------
    values : (M, D) float array, one row per described site.
    sites : (M,) int array, indices into the lattice's atoms.
    n_skipped : how many requested sites could not be described (edge windows, broken cages).
    named : per-site quantities worth a map, by name (the VAE's angle and latents), else empty.
    info : how the descriptor was obtained, where that varies (the VAE's device, seconds, loss).
    """

    values: np.ndarray
    sites: np.ndarray
    n_skipped: int
    named: Mapping[str, np.ndarray] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)


#: Image patches are float32: half the memory and time of float64 for a full frame's patches (on
#: 150 configurations of three 512 x 512 images the labels were identical to float64's).
PATCH_DTYPE = np.float32

DescriptorFn = Callable[..., Features]
DESCRIPTORS: dict[str, DescriptorFn] = {}
#: What each descriptor needs of the input beyond positions: ``"image"`` (patches) and
#: ``"b_sites"`` (B-site displacements). Searchers skip a descriptor the input cannot give.
NEEDS: dict[str, frozenset[str]] = {}
#: What an input can have, in :data:`NEEDS`' words.
INPUT_PARTS = ("image", "b_sites")


def register_descriptor(name: str, needs: tuple[str, ...] = ()):
    """Decorator adding a descriptor function ``f(image, lattice, **params) -> Features`` that
    needs the :data:`INPUT_PARTS` in ``needs`` (it raises DescriptorUnavailable without them)."""
    unknown = set(needs) - set(INPUT_PARTS)
    if unknown:
        raise ValueError(f"descriptor {name!r} needs {sorted(unknown)}; an input can only have {INPUT_PARTS}")

    def add(function: DescriptorFn) -> DescriptorFn:
        DESCRIPTORS[name] = function
        NEEDS[name] = frozenset(needs)
        return function

    return add


def describable(name: str, has: set[str]) -> bool:
    """Whether descriptor ``name`` can describe an input that has the parts ``has``."""
    return NEEDS.get(name, frozenset()) <= has


def compute_descriptor(name: str, image: np.ndarray | None, lattice: AtomLattice, **params) -> Features:
    """Run the registered descriptor ``name``."""
    if name not in DESCRIPTORS:
        raise KeyError(f"unknown descriptor {name!r}; registered: {sorted(DESCRIPTORS)}")
    return DESCRIPTORS[name](image, lattice, **params)


def window_pixels(window_a: float, lattice_constant_px: float) -> int:
    """Window size in lattice constants -> odd pixel count (at least 3)."""
    pixels = int(round(window_a * lattice_constant_px))
    return max(3, pixels + 1 - pixels % 2)


@register_descriptor("patch", needs=("image",))
def patch_descriptor(image, lattice, *, patch_sites="B", window_x=1.0, window_y=1.0, **_) -> Features:
    """Image patches of window_x x window_y lattice constants centred on each site.

    Each patch has its mean subtracted, so a smooth thickness background does not dominate
    the clustering; the pattern of columns inside the window does. Values are
    :data:`PATCH_DTYPE`.
    """
    _needs_image(image)
    sites = lattice.site_indices(patch_sites)
    width, height = _patch_size(lattice, window_x, window_y)
    values, inside = sample_patches(image.astype(PATCH_DTYPE, copy=False), lattice.xy[sites], width, height)
    values -= values.mean(axis=1, keepdims=True)  # in place: a full frame's patches are hundreds of MB
    return Features(values, sites[inside], int((~inside).sum()))


def _needs_image(image) -> None:
    if image is None:
        raise DescriptorUnavailable("image patches need an image; only positions were given")


def _patch_size(lattice: AtomLattice, window_x: float, window_y: float) -> tuple[int, int]:
    """(width, height) in pixels of a window_x x window_y lattice-constant patch."""
    return window_pixels(window_x, lattice.lattice_constant_px), window_pixels(window_y, lattice.lattice_constant_px)


def sample_patches(image: np.ndarray, xy: np.ndarray, width: int, height: int, step: float = 1.0):
    """Bilinear samples on a width x height grid, ``step`` pixels apart, centred on each (x, y).

    Returns the (M, height*width) patches of the centres whose window lies inside the image,
    and the boolean mask of those centres.
    """
    inside = windows_inside(image.shape, xy, width, height, step)
    centres = xy[inside]
    if step == 1:
        return _unit_step_windows(image, centres, width, height), inside
    offset_y, offset_x = step * np.mgrid[-(height - 1) / 2 : (height + 1) / 2, -(width - 1) / 2 : (width + 1) / 2]
    sample_rows = centres[:, 1, None, None] + offset_y  # (x, y) -> (row, col) here only
    sample_cols = centres[:, 0, None, None] + offset_x
    values = ndimage.map_coordinates(image, [sample_rows.ravel(), sample_cols.ravel()], order=1)
    return values.reshape(len(centres), height * width), inside


def windows_inside(shape: tuple[int, int], xy: np.ndarray, width: int, height: int, step: float = 1.0) -> np.ndarray:
    """Whether the width x height window (samples ``step`` pixels apart) centred on each (x, y)
    lies inside an image of ``shape`` (rows, cols)."""
    half_w, half_h = step * (width - 1) / 2, step * (height - 1) / 2
    rows, cols = shape
    return (
        (xy[:, 0] - half_w >= 0)
        & (xy[:, 0] + half_w <= cols - 1)
        & (xy[:, 1] - half_h >= 0)
        & (xy[:, 1] + half_h <= rows - 1)
    )


def _unit_step_windows(image: np.ndarray, centres: np.ndarray, width: int, height: int,
                       chunk_samples: int = 2**18, out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear windows at unit spacing: all samples of a window share one sub-pixel offset, so
    each is a blend of four integer-shifted windows. The same values as ``map_coordinates``
    (order 1) to rounding, about five times faster on a full frame. Windows are blended in
    chunks of about ``chunk_samples`` samples, so the temporaries stay near 1 MB each (chunks of
    512 windows held 50 MB of them for 2.5 a windows on a full frame, and were slower). Written
    into ``out`` ((M, height*width), rows contiguous) where given."""
    padded = np.pad(image, ((0, 1), (0, 1)), mode="edge")  # the blend's far pixels, weight 0 at the edge
    corner_x, corner_y = centres[:, 0] - (width - 1) / 2, centres[:, 1] - (height - 1) / 2
    col, row = np.floor(corner_x).astype(int), np.floor(corner_y).astype(int)
    frac_x, frac_y = corner_x - col, corner_y - row
    windows = sliding_window_view(padded, (height + 1, width + 1))
    if out is None:
        out = np.empty((len(centres), height * width), dtype=image.dtype)
    chunk = max(1, chunk_samples // (height * width))
    for start in range(0, len(centres), chunk):
        part = slice(start, start + chunk)
        w = windows[row[part], col[part]]
        ax, ay = frac_x[part, None, None], frac_y[part, None, None]
        top = w[:, :-1, :-1] + ax * (w[:, :-1, 1:] - w[:, :-1, :-1])
        bottom = w[:, 1:, :-1] + ax * (w[:, 1:, 1:] - w[:, 1:, :-1])
        out[part] = (top + ay * (bottom - top)).reshape(-1, height * width)
    return out


@register_descriptor("displacement", needs=("b_sites",))
def displacement_descriptor(image, lattice, **_) -> Features:
    """B-site off-centring (x, y) in lattice constants, on B sites with a valid cage."""
    if not lattice.has_b_sites:
        raise DescriptorUnavailable("B-site displacements need B sites; none were found or given")
    sites = lattice.site_indices("B")
    values = lattice.b_displacement[sites] / lattice.lattice_constant_px
    valid = np.isfinite(values).all(axis=1)
    return Features(values[valid], sites[valid], int((~valid).sum()))


@register_descriptor("lattice")
def lattice_descriptor(image, lattice, **_) -> Features:
    """Local cell lengths, shear and rotation per unit cell, each standardised.

    Standardising puts lengths (fractions of a) and angles (degrees) on one footing.
    """
    sites = lattice.cell_sites
    values = lattice.local_lattice[sites]
    valid = np.isfinite(values).all(axis=1)
    return Features(_standardise(values[valid]), sites[valid], int((~valid).sum()))


@register_descriptor("patch+displacement", needs=("image", "b_sites"))
def patch_and_displacement_descriptor(image, lattice, *, window_x=1.0, window_y=1.0, **_) -> Features:
    """B-site patch and displacement, each block scaled to unit total variance, side by side.

    Equal total variance gives the two blocks equal say whatever the patch size. The sites are
    the B sites with a cage whose window fits; the patches (as :func:`patch_descriptor` makes
    them) are sampled, centred and scaled in their columns of the :data:`PATCH_DTYPE` result: on
    a full frame they are a hundred MB and more, and copies of them tripled the peak.
    """
    _needs_image(image)
    shifts = displacement_descriptor(image, lattice)
    width, height = _patch_size(lattice, window_x, window_y)
    inside = windows_inside(image.shape, lattice.xy[shifts.sites], width, height)
    sites = shifts.sites[inside]
    values = np.empty((len(sites), width * height + shifts.values.shape[1]), dtype=PATCH_DTYPE)
    patches = _unit_step_windows(image.astype(PATCH_DTYPE, copy=False), lattice.xy[sites], width, height,
                                 out=values[:, : width * height])
    patches -= patches.mean(axis=1, keepdims=True)
    _unit_total_variance(patches, out=patches)
    _unit_total_variance(shifts.values[inside], out=values[:, width * height :])
    return Features(values, sites, len(lattice.site_indices("B")) - len(sites))


@register_descriptor("vae", needs=("image",))
def vae_descriptor(image, lattice, *, patch_sites="B", window=2.0, latent_dim=2, kl_weight=1.0,
                   invariance="rotation+translation", epochs=20, seed=0, **_) -> Features:
    """Latents of a rotation-invariant VAE (:mod:`.rvae`) trained on this image's square patches.

    Patches of ``window`` lattice constants are resampled to the VAE's fixed grid, the image
    smoothed first where that grid is coarser than the pixels (against aliasing).
    """
    from .rvae import SIDE, VAESettings, fit_latents  # torch loads on the first VAE evaluation only

    if image is None:
        raise DescriptorUnavailable("the VAE learns from image patches; only positions were given")
    sites = lattice.site_indices(patch_sites)
    step = window * lattice.lattice_constant_px / (SIDE - 1)
    smoothed = ndimage.gaussian_filter(image.astype(np.float32), step / 2) if step > 1 else image
    values, inside = sample_patches(smoothed, lattice.xy[sites], SIDE, SIDE, step)
    if inside.sum() < 2:
        raise DescriptorUnavailable(f"only {int(inside.sum())} {window} a patches fit inside the image")
    settings = VAESettings(latent_dim=latent_dim, kl_weight=kl_weight, invariance=invariance, epochs=epochs,
                           seed=seed)
    latents = fit_latents(values.reshape(-1, SIDE, SIDE), settings)
    info = {"device": latents.device, "seconds": round(latents.seconds, 3), "loss": round(latents.loss, 3)}
    return Features(latents.features(), sites[inside], int((~inside).sum()), latents.named(), info)


def _standardise(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    spread = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def _unit_total_variance(values: np.ndarray, out: np.ndarray, columns: int = 64) -> np.ndarray:
    """Centre ``values`` in place (it is the caller's copy, or ``out`` itself) and write them,
    scaled to unit total variance, into ``out`` (cast to its dtype). The variances are taken
    ``columns`` at a time (the same numbers): at once they would hold a centred copy of it all."""
    if len(values) == 0:
        return out
    values -= values.mean(axis=0)
    variances = [values[:, i : i + columns].var(axis=0) for i in range(0, values.shape[1], columns)]
    total = np.sqrt(np.sum(np.concatenate(variances)))
    return np.divide(values, total if total > 0 else 1.0, out=out)
