"""Synthetic HAADF-STEM images of Sm-doped BiFeO3-like films, with ground truth.

A perovskite ABO3 film seen along pseudo-cubic [001]: bright A columns (Bi, Sm) on a square
lattice, dimmer B columns (Fe) at the cell centres, displaced *against* the projected
polarization of their domain. Domains come as stripes, two crossing stripe families, or a
tapered needle, or four variants in turn; above a Sm threshold an antipolar band appears, and a
second perovskite (a substrate of other chemistry, non-polar) can meet the film at an interface.
Images without walls that a reward must refuse come from ``"single"`` with smooth gradients
(column brightness, strain, scan distortion) or ``"rotation"`` (polarization turning smoothly
across the image). The image then gets the artefacts of a real scan (drift shear, scan-line
jitter, smooth background, mis-tilt, shot and read noise), and the truth records every column
inside the image.

Column brightness follows HAADF physics (DESIGN.md sections 2 and 7). Each column scatters by
its Z-contrast (``ab_ratio`` is the A:B ratio of the columns' own scattering); a share of that is
recorded at its nearest neighbours of the other sublattice, as the probe channels into them
(``crosstalk``); and every column is drawn with the profile of an aberration-corrected probe, a
Gaussian core with a broad Gaussian skirt that carries ``skirt_fraction`` of its integrated
intensity. The image is in units of the rendered peak of an undoped A column inside the film;
:attr:`SyntheticParams.rendered_ab_ratio` is the A:B peak ratio the image then shows there.

Conventions (DESIGN.md section 4):

- Coordinates are ``(x, y)`` pixels, x = column, y = row, pixel centres at integers; y points
  down, so a positive angle turns +x towards +y (clockwise on screen). Every angle here is
  measured that way in the image frame.
- ``b_displacement`` = B position minus the centre of its four A neighbours;
  ``polarization = -b_displacement``.
- Each atom's variant is the domain field read at that atom's own ideal lattice position
  (before any displacement, antipolar shift or drift); the A and B columns of a domain
  therefore share its variant, and a wall passes between columns.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

from ferrogym.workflows.errors import InputError

__all__ = [
    "ANTIPOLAR",
    "FAMILIES",
    "POLARIZATION_DIRECTIONS",
    "SUBSTRATE",
    "GroundTruth",
    "SyntheticParams",
    "SyntheticSample",
    "family_fields",
    "generate",
    "sample_params",
]

POLARIZATION_DIRECTIONS = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]) / np.sqrt(2.0)
POLARIZATION_DIRECTIONS.setflags(write=False)
ANTIPOLAR = 4
SUBSTRATE = 5

DOMAIN_KINDS = ("single", "stripes", "two_families", "needle", "four_stripes", "rotation")
#: Kinds of image (:attr:`SyntheticParams.family`): a domain pattern, or a film on a substrate.
FAMILIES = (*DOMAIN_KINDS, "phase_boundary")
COLUMN_ATOMS = 20  # A-site atoms per column: sets the binomial spread of the Sm content
SM_DIMMING = 0.35  # relative loss of an A column's scattering per unit Sm fraction (5 % at 14 % Sm)
WINDOW_SIGMAS = 4.0  # Gaussians are rendered out to this many sigma (tail below 4e-4 of peak)
MAX_CROSSTALK = 0.125  # a column with four neighbours then records as much of theirs as of its own
MIN_CELLS = 3  # the smaller image side must span at least this many unit cells
MIN_LATTICE_PX = 4.0  # below this the columns are not resolved


@dataclass(frozen=True)
class SyntheticParams:
    """Physical and imaging parameters of one synthetic image; validated on construction.

    Attributes
    ----------
    shape : tuple of int
        Image size as numpy ``(rows, cols)``; the smaller side must span 3 unit cells.
    pixel_size_pm : float
        Sampling, picometres per pixel (real images: 10-20).
    lattice_constant_pm : float
        Pseudo-cubic lattice constant a (BiFeO3: about 396 pm).
    lattice_rotation_deg : float
        Angle of the lattice's first axis from image +x.
    displacement_pm : float
        Magnitude of the B-site off-centring, against the polarization; below a / 4.
    domains : str
        Domain pattern: ``"single"`` (one variant, no walls), ``"stripes"`` (two variants
        alternating across parallel walls), ``"two_families"`` (two crossing stripe systems,
        all four polar variants), ``"needle"`` (a tapered wedge in a matrix),
        ``"four_stripes"`` (parallel stripes taking the four polar variants in turn, starting
        at the first of ``variants``: 71 and 109 degree walls) or ``"rotation"`` (no wall:
        the polarization turns smoothly by ``rotation_span_deg`` across the image along the
        normal of ``wall_angle_deg``; truth is one domain of the first variant).
    wall_angle_deg : float
        Direction of the first wall family from image +x; for ``"needle"`` the direction of
        the needle axis (which passes through the image centre and enters from the border
        behind it: from the left border at 0 degrees).
    wall_angle2_deg : float
        Direction of the second wall family (``"two_families"`` only).
    period_cells, period2_cells : float
        Stripe period of the first / second family in unit cells (domain width = period / 2);
        at least 2.
    wall_offset_cells : float
        Phase of both stripe systems: walls lie at signed distances ``m * period / 2 -
        wall_offset_cells`` (cells) from the image centre, where an A column sits, so that
        walls fall between columns.
    variants : tuple of int
        Two distinct polar variants (0..3). ``"single"``: the first is the variant;
        ``"stripes"``: the two that alternate; ``"needle"``: (matrix, needle);
        ``"two_families"``: the first is the variant of the domain at the image centre.
    needle_width_cells : float
        Width of the needle where it enters the image, in unit cells.
    needle_length_fraction : float
        Distance from the entry border to the tip as a fraction of the image's extent along
        the needle axis (the width, at 0 degrees); in (0, 1].
    sm_fraction : float
        Mean Sm fraction on the A site, 0..1 (the studied films: 0-0.2). Each A column's Sm
        count is binomial over 20 atoms and dims its own scattering by
        ``1 - 0.35 * local_fraction`` (through cross-talk, its B neighbours dim a little too).
    antipolar_threshold : float
        Above this Sm fraction an antipolar band appears.
    antipolar_area_fraction : float
        Share of the image covered by that band (along the bottom, bounded by a line along the
        lattice's first axis placed a quarter cell off a column row), 0..1.
    antipolar_shift_pm : float
        In the band, A columns shift by +/- this along the lattice's first axis, the sign
        alternating from one lattice row to the next; B columns sit at their cage centre;
        below a / 4.
    rotation_span_deg : float
        Total turn of the polarization across the image for ``"rotation"``.
    substrate_fraction : float
        Share of the image (along the top, bounded by a line along the lattice's first axis
        turned by ``interface_tilt_deg``) taken by a second, non-polar perovskite of other chemistry, 0..0.9 (0: none). Its
        columns have truth variant 5 (``SUBSTRATE``), B sites at their cage centre and the
        peak ratio ``substrate_ab_ratio``; the film's domains, antipolar band included, stop
        at the interface.
    substrate_ab_ratio : float
        A:B ratio of the substrate columns' own scattering, as ``ab_ratio`` for the film (real
        B/A: about 0.4 for SrTiO3, about 1 or more for SrRuO3); its A columns scatter as an
        undoped film A column, and cross-talk and the probe's skirt act as in the film. Below 1
        (B brighter than A, as in SrRuO3) the brightness order flips at the interface, which a
        global A/B split by brightness cannot follow.
    interface_tilt_deg : float
        Angle of the film-substrate interface from the lattice's first axis (0: a flat,
        coherent interface along a lattice plane).
    intensity_gradient : float
        Relative change of every column's recorded intensity across the image along
        ``gradient_angle_deg`` (thickness or focus changing across the field): it scales by
        ``1 + g (s - 1/2)``, and its peak with it,
        s from 0 to 1 across the image; in [0, 1.5].
    strain_gradient : float
        Relative change of the lattice constant across the image along
        ``gradient_angle_deg``: the local lattice constant is ``a (1 + e (s - 1/2))``; columns
        move, walls and variants with them; |value| <= 0.2.
    gradient_angle_deg : float
        Direction (from image +x) along which both gradients run.
    twin_shear : float
        Ferroelastic twinning (radians, 0..0.1; rhombohedral BiFeO3 about 0.01, tetragonal
        PbTiO3 about 0.06): across each wall of ``"stripes"``, ``"four_stripes"`` and
        ``"two_families"`` the lattice shears parallel to the wall, each domain by +/- half of
        this against the image's mean, so the local cell angle and rotation differ between
        domains (what lattice descriptors see without an image). Every wall between variants
        of different spontaneous strain (polarizations 90 degrees apart in projection: 0 and
        2 against 1 and 3) is such a twin; a 180 degree wall is not. A shear parallel to the
        walls keeps the lattice continuous across them (the twins are compatible) and moves
        each wall only along itself, though one family's shear moves the other's walls by up
        to ``twin_shear`` times half its domain width. ``"single"``, ``"rotation"`` and
        ``"needle"`` ignore it; the antipolar band and a substrate move with the film's field.
    ab_ratio : float
        A:B ratio of the columns' own scattering, an undoped film A column over a film B column,
        before cross-talk; both are drawn with the same probe profile. HAADF intensity grows
        roughly as Z^1.6-2, so real B/A peak ratios are about 0.1-0.25 for Bi/Fe and Pb/Ti, 0.4
        for Sr/Ti and above 1 for Sr/Ru (A:B 10 to below 1). The default 7 (B/A 0.14) is Fe
        against Bi at Z^1.7; cross-talk and the skirts lift the rendered B peaks to
        :attr:`rendered_ab_ratio`, 4.8 (B/A 0.21) at the defaults, near the B/A of 0.2 that a
        multislice simulation of BiFeO3 gives.
    column_sigma_pm : float
        Standard deviation of the Gaussian core of the column profile; below a / 2.
    skirt_fraction : float
        Share of each column's integrated intensity in the probe's skirt, a broad Gaussian of
        ``skirt_sigma_pm`` around the core, in [0, 1). An aberration-corrected probe is a sharp
        core with a broad skirt: even a perfect 20-30 mrad aperture at 200 kV sends 16 % of the
        current into the Airy rings; the focal spread from chromatic aberration (Cc about
        1.2-1.6 mm and an energy spread of 0.3-0.8 eV give a few nm) moves current from the
        core into a halo without widening the core; and the effective source has a tail beyond
        its Gaussian part. A probe computed from the first two (20-30 mrad, 2-6 nm focal
        spread), blurred by a Gaussian source of 40-60 pm FWHM and fitted with two Gaussians
        puts 18-50 % of the intensity in a skirt of standard deviation 65-125 pm around a core
        of 24-36 pm (the column's own width, tens of pm, widens the core a little); a
        Lorentzian tail on the source raises the skirt to about 40 %. Default 0.3.
    skirt_sigma_pm : float
        Standard deviation of the skirt; in (0, a], normally 2-4 times ``column_sigma_pm``
        (a broader halo is ``background``). Default 100 pm, from the fit above.
    crosstalk : float
        Share k of each column's own scattering S that is recorded at each of its nearest
        neighbours of the other sublattice (an A column's four B columns, a B column's cage of
        four A columns), in [0, 0.125]. With the probe on one column, part of it channels into
        the neighbours and scatters there, so column i records ``(1 - k n_i) S_i + k sum_j S_j``
        over its n_i neighbours j (4 in the crystal), a linear mixing that conserves the total,
        as atom-counting studies model and correct cross-talk. Dim B columns between bright A
        columns look brighter, A columns a little dimmer; at most 0.125, where a column
        records as much of its neighbours' scattering as of its own. The default 0.015 closes
        the gap between the Z-contrast of Fe against Bi (B/A 0.14) and the multislice 0.2: a
        Fe column keeps 94 % of its own scattering and gains 1.5 % of each Bi neighbour's, a
        third of what it records. Cross-talk grows with thickness, as the probe dechannels
        from light columns.
    dose : float or None
        Expected counts at the rendered peak of an undoped A column inside the film; the image
        is Poisson-sampled at that scale. None: a noise-free image in units of that peak.
    read_noise : float
        Standard deviation of additive Gaussian read noise, counts; needs a dose.
    scan_jitter_px : float
        Standard deviation of an independent random x shift of each image row.
    drift_shear : float
        Slow drift: row y is shifted in x by ``drift_shear * (y - centre row)``; |value| < 0.5.
    background : float
        Peak amplitude of a smooth background (tilted plane plus a broad bump), relative to an
        undoped A peak.
    mistilt_offset_px : tuple of float
        Constant (x, y) offset of every rendered B column, faking an A-B offset as a small
        mis-tilt does; not part of the true ``b_displacement`` nor of the truth positions.
    """

    shape: tuple[int, int] = (512, 512)
    pixel_size_pm: float = 16.0
    lattice_constant_pm: float = 396.0
    lattice_rotation_deg: float = 0.0
    displacement_pm: float = 30.0
    domains: str = "two_families"
    wall_angle_deg: float = 0.0
    wall_angle2_deg: float = 90.0
    period_cells: float = 10.0
    period2_cells: float = 10.0
    wall_offset_cells: float = 0.3
    variants: tuple[int, int] = (0, 1)
    needle_width_cells: float = 8.0
    needle_length_fraction: float = 0.6
    sm_fraction: float = 0.0
    antipolar_threshold: float = 0.12
    antipolar_area_fraction: float = 0.3
    antipolar_shift_pm: float = 20.0
    rotation_span_deg: float = 90.0
    substrate_fraction: float = 0.0
    substrate_ab_ratio: float = 1.5
    interface_tilt_deg: float = 0.0
    intensity_gradient: float = 0.0
    strain_gradient: float = 0.0
    gradient_angle_deg: float = 0.0
    twin_shear: float = 0.0
    ab_ratio: float = 7.0
    column_sigma_pm: float = 35.0
    skirt_fraction: float = 0.3
    skirt_sigma_pm: float = 100.0
    crosstalk: float = 0.015
    dose: float | None = 200.0
    read_noise: float = 0.0
    scan_jitter_px: float = 0.0
    drift_shear: float = 0.0
    background: float = 0.0
    mistilt_offset_px: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        _normalise_sequences(self)
        _validate(self)

    @property
    def lattice_constant_px(self) -> float:
        """Lattice constant in pixels."""
        return self.lattice_constant_pm / self.pixel_size_pm

    @property
    def column_sigma_px(self) -> float:
        """Width of the column profile's Gaussian core in pixels."""
        return self.column_sigma_pm / self.pixel_size_pm

    @property
    def skirt_sigma_px(self) -> float:
        """Width of the probe skirt in pixels."""
        return self.skirt_sigma_pm / self.pixel_size_pm

    @property
    def rendered_ab_ratio(self) -> float:
        """A:B ratio of the rendered peaks of an undoped A column and a B column inside the film.

        What the noise-free image shows away from walls, interface, image border and Sm: the
        columns' own ratio ``ab_ratio`` after cross-talk (each column records ``1 - 4k`` of
        its own scattering and ``k`` of each of its four neighbours') and after the skirts and
        cores of all other columns add at its centre, on the ideal lattice. The B off-centring
        changes the B peaks by well under 1 % of them (their distances to the A skirts change),
        the intensity gradient not at all; with ``crosstalk = skirt_fraction = 0`` it is
        ``ab_ratio`` itself.
        """
        peak_a, peak_b = _film_peaks(self)
        return peak_a / peak_b

    @property
    def brighter_sublattice(self) -> str:
        """Which sublattice shows brighter where it decides the naming, as a user who knows the
        material tells the analysis (``Workflow(brighter_sublattice=...)``): the film's order,
        unless a substrate of the other order outweighs it, each layer's log peak ratio weighed by
        its area as :func:`~ferrogym.workflows.lattice.split_sublattices` weighs their columns."""
        film = (1 - self.substrate_fraction) * np.log(self.rendered_ab_ratio)
        peak_a, peak_b = _film_peaks(self, self.substrate_ab_ratio)
        substrate = self.substrate_fraction * np.log(peak_a / peak_b)
        return "A" if film + substrate >= 0 else "B"

    @property
    def has_antipolar(self) -> bool:
        """Whether this image contains an antipolar band."""
        return self.sm_fraction > self.antipolar_threshold and self.antipolar_area_fraction > 0

    @property
    def family(self) -> str:
        """The kind of image for audits: ``"phase_boundary"`` with a substrate, else ``domains``."""
        return "phase_boundary" if self.substrate_fraction > 0 else self.domains


@dataclass(frozen=True)
class GroundTruth:
    """What the generator put into the image, one row per column centred inside it.

    Attributes
    ----------
    xy : ndarray, shape (N, 2)
        (x, y) pixel positions as rendered: drift applied; scan jitter and mis-tilt not.
        A columns first, then B columns. Inside means ``0 <= x <= cols - 1`` and
        ``0 <= y <= rows - 1``.
    sublattice : ndarray, shape (N,), '<U1'
        ``"A"`` or ``"B"``.
    variant : ndarray, shape (N,), int
        0..3: polar variant (see ``POLARIZATION_DIRECTIONS``); 4 (``ANTIPOLAR``): antipolar;
        5 (``SUBSTRATE``): the second perovskite.
    b_displacement : ndarray, shape (N, 2)
        Physical B off-centring in pixels: B position minus the centre of its four A
        neighbours, before drift (drift shears it by ``drift_shear * dy`` in x, far below a
        pixel); ``-displacement * P`` in a polar domain (P turning with position for
        ``"rotation"``), 0 in the antipolar band, the substrate and for A columns.
        ``polarization = -b_displacement``.
    wall_mask : ndarray, shape (rows, cols), bool
        Pixels within half a unit cell of a domain wall or phase boundary (drift applied;
        not the strain gradient's shift, at most ``|e| a n / 8`` for n cells across).
    pixel_size_pm : float
    lattice_constant_px : float
    """

    xy: np.ndarray
    sublattice: np.ndarray
    variant: np.ndarray
    b_displacement: np.ndarray
    wall_mask: np.ndarray
    pixel_size_pm: float
    lattice_constant_px: float


@dataclass(frozen=True)
class SyntheticSample:
    """A synthetic image (float64, counts or noise-free units), its truth and its parameters."""

    image: np.ndarray
    truth: GroundTruth
    params: SyntheticParams


@dataclass(frozen=True)
class _Lattice:
    """Ideal A grid ``(nj + 1, ni + 1, 2)`` and B cell centres ``(nj, ni, 2)``, pre-drift."""

    a_ideal: np.ndarray
    b_ideal: np.ndarray
    a_row_index: np.ndarray  # (nj + 1, 1) lattice row index j of each A row, for the antipolar sign


@dataclass(frozen=True)
class _Columns:
    """One sublattice, pre-drift: variant (N,), position xy (N, 2), physical B off-centring (N, 2)."""

    variant: np.ndarray
    xy: np.ndarray
    b_displacement: np.ndarray


# --------------------------------------------------------------------------- validation


def _normalise_sequences(params: SyntheticParams) -> None:
    """Turn list-like shape / variants / mistilt into tuples so the frozen params hash and compare."""
    for name in ("shape", "variants", "mistilt_offset_px"):
        value = getattr(params, name)
        if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
            raise _fail(name, value, "must be a pair of numbers", f"pass e.g. {_default(name)!r}")
        object.__setattr__(params, name, tuple(value))


def _default(name: str):
    """Default value of a SyntheticParams field, for error messages."""
    return next(f.default for f in fields(SyntheticParams) if f.name == name)


def _fail(name: str, value, problem: str, fix: str) -> InputError:
    """Build the InputError for a bad parameter."""
    return InputError(f"SyntheticParams.{name} = {value!r}: {problem}; {fix}")


def _check_number(params: SyntheticParams, name: str, low=-np.inf, high=np.inf,
                  low_open=False, high_open=False) -> None:
    """Check that a field is a finite real number within [low, high] (or open ends)."""
    value = getattr(params, name)
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not is_real or not np.isfinite(value):
        raise _fail(name, value, "must be a finite number", f"pass e.g. {_default(name)!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise _fail(name, value, f"must lie in {interval}", "pass a value inside that range")


def _validate(p: SyntheticParams) -> None:
    """Raise InputError naming the first field that is out of range or inconsistent."""
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in p.shape):
        raise _fail("shape", p.shape, "must be two integers (rows, cols)", "pass e.g. (512, 512)")
    for name in ("pixel_size_pm", "lattice_constant_pm", "ab_ratio"):
        _check_number(p, name, 0.0, low_open=True)
    if p.lattice_constant_px < MIN_LATTICE_PX:
        raise _fail("pixel_size_pm", p.pixel_size_pm, f"gives a lattice constant of {p.lattice_constant_px:.2f} px, "
                    f"columns unresolved", f"use a pixel size below {p.lattice_constant_pm / MIN_LATTICE_PX:g} pm")
    if min(p.shape) < MIN_CELLS * p.lattice_constant_px:
        needed = int(np.ceil(MIN_CELLS * p.lattice_constant_px))
        raise _fail("shape", p.shape, f"spans fewer than {MIN_CELLS} unit cells of {p.lattice_constant_px:.1f} px",
                    f"use at least {needed} pixels per side or a larger pixel size")
    quarter_cell = p.lattice_constant_pm / 4
    _check_number(p, "displacement_pm", 0.0, quarter_cell, high_open=True)
    _check_number(p, "antipolar_shift_pm", 0.0, quarter_cell, high_open=True)
    _check_number(p, "column_sigma_pm", 0.0, p.lattice_constant_pm / 2, low_open=True, high_open=True)
    _check_number(p, "skirt_fraction", 0.0, 1.0, high_open=True)
    _check_number(p, "skirt_sigma_pm", 0.0, p.lattice_constant_pm, low_open=True)
    _check_number(p, "crosstalk", 0.0, MAX_CROSSTALK)
    if p.domains not in DOMAIN_KINDS:
        raise _fail("domains", p.domains, "is not a known domain pattern", f"use one of {DOMAIN_KINDS}")
    for name in ("lattice_rotation_deg", "wall_angle_deg", "wall_angle2_deg", "wall_offset_cells"):
        _check_number(p, name)
    _check_number(p, "drift_shear", -0.5, 0.5, low_open=True, high_open=True)
    _check_number(p, "period_cells", 2.0)
    _check_number(p, "period2_cells", 2.0)
    _validate_variants(p)
    _check_number(p, "needle_width_cells", 0.0, low_open=True)
    _check_number(p, "needle_length_fraction", 0.0, 1.0, low_open=True)
    for name in ("sm_fraction", "antipolar_threshold", "antipolar_area_fraction"):
        _check_number(p, name, 0.0, 1.0)
    _check_number(p, "rotation_span_deg", -360.0, 360.0)
    _check_number(p, "substrate_fraction", 0.0, 0.9)
    _check_number(p, "substrate_ab_ratio", 0.0, low_open=True)
    _check_number(p, "interface_tilt_deg", -45.0, 45.0)
    _check_number(p, "intensity_gradient", 0.0, 1.5)
    _check_number(p, "strain_gradient", -0.2, 0.2)
    _check_number(p, "gradient_angle_deg")
    _check_number(p, "twin_shear", 0.0, 0.1)
    for name in ("read_noise", "scan_jitter_px", "background"):
        _check_number(p, name, 0.0)
    _validate_dose(p)
    if not all(np.isfinite(v) for v in p.mistilt_offset_px):
        raise _fail("mistilt_offset_px", p.mistilt_offset_px, "must be finite", "pass e.g. (0.3, -0.2)")


def _validate_variants(p: SyntheticParams) -> None:
    """Two distinct polar variant ids 0..3."""
    ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 3 for v in p.variants)
    if not ok or p.variants[0] == p.variants[1]:
        raise _fail("variants", p.variants, "must be two distinct polar variants 0..3",
                    "pass e.g. (0, 1); the antipolar phase (4) comes from sm_fraction instead")


def _validate_dose(p: SyntheticParams) -> None:
    """Dose positive or None; read noise needs a dose to have a count scale."""
    if p.dose is not None:
        _check_number(p, "dose", 0.0, low_open=True)
    elif p.read_noise > 0:
        raise _fail("read_noise", p.read_noise, "needs a dose (counts have no scale in a noise-free image)",
                    "set dose to a number of counts or read_noise to 0")


# --------------------------------------------------------------------------- geometry


def _centre(shape: tuple[int, int]) -> np.ndarray:
    """Image centre (x, y), where an A column sits and walls are phased from."""
    rows, cols = shape
    return np.array([(cols - 1) / 2, (rows - 1) / 2])


def _rotation(angle_deg: float) -> np.ndarray:
    """2x2 matrix turning +x towards +y by angle_deg (clockwise on screen, y down)."""
    t = np.deg2rad(angle_deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _lattice_axes(p: SyntheticParams) -> np.ndarray:
    """Rows: unit vectors (x, y) of the lattice's first and second axis in the image."""
    return _rotation(p.lattice_rotation_deg).T


def _polarizations(p: SyntheticParams) -> np.ndarray:
    """(4, 2) polarization unit vectors of variants 0..3, turned with the lattice."""
    return POLARIZATION_DIRECTIONS @ _lattice_axes(p)


def _build_lattice(p: SyntheticParams, margin_px: float) -> _Lattice:
    """Ideal A and B positions covering the image plus margin, the drift's reach included."""
    rows, cols = p.shape
    a = p.lattice_constant_px
    centre = _centre(p.shape)
    reach = abs(p.drift_shear) * rows / 2
    x0, x1 = -margin_px - reach, cols - 1 + margin_px + reach
    y0, y1 = -margin_px, rows - 1 + margin_px
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
    axes = _lattice_axes(p)
    ij = (corners - centre) @ axes.T / a
    i = np.arange(np.floor(ij[:, 0].min()) - 1, np.ceil(ij[:, 0].max()) + 2)
    j = np.arange(np.floor(ij[:, 1].min()) - 1, np.ceil(ij[:, 1].max()) + 2)

    def grid(ii, jj):
        return centre + a * (ii[None, :, None] * axes[0] + jj[:, None, None] * axes[1])

    return _Lattice(a_ideal=grid(i, j), b_ideal=grid(i[:-1] + 0.5, j[:-1] + 0.5), a_row_index=j[:, None].astype(int))


def _stripe_index(xy: np.ndarray, p: SyntheticParams, angle_deg: float, period_cells: float) -> np.ndarray:
    """Integer index of the stripe domain containing each point (walls along angle_deg)."""
    a = p.lattice_constant_px
    t = np.deg2rad(angle_deg)
    normal = np.array([-np.sin(t), np.cos(t)])
    distance = (xy - _centre(p.shape)) @ normal
    return np.floor((distance + p.wall_offset_cells * a) / (period_cells * a / 2)).astype(int)


def _needle_mask(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Points inside the tapered needle: width needle_width_cells at the entry border, 0 at the tip."""
    centre = _centre(p.shape)
    t = np.deg2rad(p.wall_angle_deg)
    axis, normal = np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])
    with np.errstate(divide="ignore"):
        half_chord = np.min(centre / np.abs(axis))  # centre to border along the axis
    base = centre - half_chord * axis
    length = p.needle_length_fraction * 2 * half_chord
    along, across = (xy - base) @ axis, (xy - base) @ normal
    half_width = p.needle_width_cells * p.lattice_constant_px / 2 * (1 - along / length)
    return np.abs(across) < half_width


def _polar_variant(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Polar variant 0..3 of the domain pattern at each point."""
    v0, v1 = p.variants
    if p.domains in ("single", "rotation"):
        return np.full(len(xy), v0)
    if p.domains == "needle":
        return np.where(_needle_mask(xy, p), v1, v0)
    stripe = _stripe_index(xy, p, p.wall_angle_deg, p.period_cells)
    if p.domains == "four_stripes":
        return (v0 + stripe) % 4  # neighbouring variants differ by 90 degrees in projection
    k1 = stripe % 2
    if p.domains == "stripes":
        return np.where(k1 == 0, v0, v1)
    k2 = _stripe_index(xy, p, p.wall_angle2_deg, p.period2_cells) % 2
    signs = np.sign(POLARIZATION_DIRECTIONS[v0]) * np.stack([1 - 2 * k1, 1 - 2 * k2], axis=1)
    return _variant_of_signs(signs)


def _variant_of_signs(signs: np.ndarray) -> np.ndarray:
    """Variant id of each row of (x, y) polarization signs in the lattice frame."""
    by_code = np.array([0, 3, 1, 2])  # code 2 * (x < 0) + (y < 0): (+,+)=0, (+,-)=3, (-,+)=1, (-,-)=2
    return by_code[2 * (signs[:, 0] < 0) + (signs[:, 1] < 0)]


def _band_mask(xy: np.ndarray, p: SyntheticParams, area_fraction: float, from_bottom: bool,
               tilt_deg: float = 0.0) -> np.ndarray:
    """Points in a band along the bottom (or top) of the image covering ``area_fraction`` of it,
    bounded by a line along the lattice's first axis turned by ``tilt_deg``, placed a quarter
    cell off a column row (untilted)."""
    rows, cols = p.shape
    a = p.lattice_constant_px
    normal = _rotation(tilt_deg) @ _lattice_axes(p)[1]
    sign = 1.0 if from_bottom else -1.0
    grid = np.stack(np.meshgrid(np.arange(0, cols, 4.0), np.arange(0, rows, 4.0)), axis=-1).reshape(-1, 2)
    depth = sign * (grid - _centre(p.shape)) @ normal / a  # lattice rows from the centre towards the band
    boundary = np.round(np.quantile(depth, 1 - area_fraction) - 0.25) + 0.25
    return sign * (xy - _centre(p.shape)) @ normal / a >= boundary


def _antipolar_mask(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Points in the antipolar band (bottom of the image)."""
    if not p.has_antipolar:
        return np.zeros(len(xy), dtype=bool)
    return _band_mask(xy, p, p.antipolar_area_fraction, from_bottom=True)


def _substrate_mask(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Points in the second perovskite (top of the image)."""
    if p.substrate_fraction == 0:
        return np.zeros(len(xy), dtype=bool)
    return _band_mask(xy, p, p.substrate_fraction, from_bottom=False, tilt_deg=p.interface_tilt_deg)


def _variant_at(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Variant 0..5 of the domain field at ideal (pre-drift) points xy of shape (N, 2)."""
    film = np.where(_antipolar_mask(xy, p), ANTIPOLAR, _polar_variant(xy, p))
    return np.where(_substrate_mask(xy, p), SUBSTRATE, film)


def _direction(angle_deg: float) -> np.ndarray:
    """Unit vector (x, y) at angle_deg from +x towards +y."""
    t = np.deg2rad(angle_deg)
    return np.array([np.cos(t), np.sin(t)])


def _extent_along(p: SyntheticParams, direction: np.ndarray) -> float:
    """Width of the image measured along a unit direction."""
    rows, cols = p.shape
    return abs(cols * direction[0]) + abs(rows * direction[1])


def _position_along(xy: np.ndarray, p: SyntheticParams, angle_deg: float) -> np.ndarray:
    """Position s of each point along angle_deg: 0 and 1 at the image's extremes, 1/2 at its centre."""
    direction = _direction(angle_deg)
    return (xy - _centre(p.shape)) @ direction / _extent_along(p, direction) + 0.5


def _strain(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Move points so that the local lattice constant is ``a (1 + e (s - 1/2))`` along the gradient."""
    if p.strain_gradient == 0:
        return xy
    direction = _direction(p.gradient_angle_deg)
    along = (xy - _centre(p.shape)) @ direction  # distance from the centre along the gradient
    return xy + (p.strain_gradient * along**2 / (2 * _extent_along(p, direction)))[..., None] * direction


def _twin_displacement(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Displacement (N, 2) px of points at ideal positions ``xy`` by the ferroelastic twin shear.

    A laminate of walls along ``t`` (normal ``n``) whose domains shear by ``+/- twin_shear / 2``
    parallel to the walls has the displacement ``t * twin_shear / 2 * integral of +/-1 along n``
    from the image centre, and the integral of a square wave is a triangle wave. Stripes of one
    strain class (180 degree walls) do not shear; ``"two_families"`` adds one laminate per family.
    """
    if p.twin_shear == 0 or p.domains not in ("stripes", "four_stripes", "two_families"):
        return np.zeros_like(xy)
    if p.domains == "two_families":
        laminates = [(p.wall_angle_deg, p.period_cells, 1.0, -1.0), (p.wall_angle2_deg, p.period2_cells, 1.0, -1.0)]
    else:
        first, second = (p.variants[0], p.variants[1]) if p.domains == "stripes" else (p.variants[0], p.variants[0] + 1)
        laminates = [(p.wall_angle_deg, p.period_cells, _strain_class(first), _strain_class(second))]
    a = p.lattice_constant_px
    displacement = np.zeros_like(xy)
    for angle, period, even, odd in laminates:
        tangent = _direction(angle)
        normal = np.array([-tangent[1], tangent[0]])
        width = period * a / 2
        offset = p.wall_offset_cells * a
        along_normal = (xy - _centre(p.shape)) @ normal
        integral = (even - odd) / 2 * (_triangle(along_normal + offset, width) - _triangle(offset, width))
        displacement += (p.twin_shear / 2 * integral)[:, None] * tangent
    return displacement


def _strain_class(variant: int) -> float:
    """+1 for polar variants 0 and 2, -1 for 1 and 3: their spontaneous shears are opposite."""
    x, y = POLARIZATION_DIRECTIONS[variant % 4]
    return float(np.sign(x * y))


def _triangle(z, width: float):
    """Integral from 0 to z of a square wave that is +1 on [0, width) and -1 on [width, 2 width)."""
    return width - np.abs(np.mod(z, 2 * width) - width)


def _off_centring(p: SyntheticParams, b_ideal: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """B off-centring (N, 2) px: against the polarization of each polar variant, 0 elsewhere.

    For ``"rotation"`` the polarization turns from ``-span / 2`` to ``+span / 2`` about the
    first variant's direction from one side of the image to the other, along the normal of
    ``wall_angle_deg``.
    """
    size = p.displacement_pm / p.pixel_size_pm
    table = -size * np.vstack([_polarizations(p), np.zeros((2, 2))])  # variants 0..3, antipolar, substrate
    off = table[variant]
    if p.domains == "rotation":
        turn = np.deg2rad(p.rotation_span_deg) * (_position_along(b_ideal, p, p.wall_angle_deg + 90.0) - 0.5)
        base = np.arctan2(*_polarizations(p)[p.variants[0]][::-1])
        polar = variant <= 3
        angle = base + turn[polar]
        off[polar] = -size * np.column_stack([np.cos(angle), np.sin(angle)])
    return off


# --------------------------------------------------------------------------- structure


def _place_columns(p: SyntheticParams, lattice: _Lattice) -> tuple[_Columns, _Columns]:
    """A and B columns with their variants and pre-drift positions.

    A columns in the antipolar band shift +/- along the lattice's first axis by lattice row, the
    twin shear moves every A column, then a strain gradient does; each B sits at the centre of its four A
    neighbours plus its off-centring.
    """
    nj, ni = lattice.a_ideal.shape[:2]
    var_a = _variant_at(lattice.a_ideal.reshape(-1, 2), p).reshape(nj, ni)
    b_ideal = lattice.b_ideal.reshape(-1, 2)
    var_b = _variant_at(b_ideal, p)
    shift_px = p.antipolar_shift_pm / p.pixel_size_pm
    sign = np.where(lattice.a_row_index % 2 == 0, 1.0, -1.0)
    antipolar_shift = np.where(var_a == ANTIPOLAR, sign * shift_px, 0.0)[..., None] * _lattice_axes(p)[0]
    a_ideal = lattice.a_ideal.reshape(-1, 2)
    twinned = a_ideal + antipolar_shift.reshape(-1, 2) + _twin_displacement(a_ideal, p)
    pos_a = _strain(twinned, p).reshape(nj, ni, 2)
    cage = (pos_a[:-1, :-1] + pos_a[:-1, 1:] + pos_a[1:, :-1] + pos_a[1:, 1:]) / 4
    b_disp = _off_centring(p, b_ideal, var_b)
    a_columns = _Columns(var_a.ravel(), pos_a.reshape(-1, 2), np.zeros((var_a.size, 2)))
    b_columns = _Columns(var_b, cage.reshape(-1, 2) + b_disp, b_disp)
    return a_columns, b_columns


def _recorded_intensities(p: SyntheticParams, grid_shape: tuple[int, int], a_columns: _Columns,
                          b_columns: _Columns, rng: np.random.Generator) -> np.ndarray:
    """Integrated intensity each column records, A then B, in image units (where the rendered
    peak of an undoped film A column is 1): own scattering (Sm dimming on film A sites, each
    phase's A:B ratio), cross-talk between nearest neighbours, then the intensity gradient.

    ``grid_shape`` is the (rows, cols) shape of the A grid the columns come from, row-major; the
    B columns are its cells.
    """
    a_own = np.where(a_columns.variant == SUBSTRATE, 1.0, _a_own_scattering(p, len(a_columns.xy), rng))
    b_own = np.where(b_columns.variant == SUBSTRATE, 1 / p.substrate_ab_ratio, 1 / p.ab_ratio)
    a_rows, a_cols = grid_shape
    a_recorded, b_recorded = _crosstalk(a_own.reshape(a_rows, a_cols), b_own.reshape(a_rows - 1, a_cols - 1),
                                        p.crosstalk)
    recorded = np.concatenate([a_recorded.ravel(), b_recorded.ravel()])
    xy = np.concatenate([a_columns.xy, b_columns.xy])
    gradient = 1 + p.intensity_gradient * (_position_along(xy, p, p.gradient_angle_deg) - 0.5)
    return recorded * gradient / _film_peaks(p)[0]


def _a_own_scattering(p: SyntheticParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """Own scattering of n film A columns (1 when undoped), dimmed by each one's binomial Sm content."""
    local_sm = rng.binomial(COLUMN_ATOMS, p.sm_fraction, size=n) / COLUMN_ATOMS
    return 1.0 - SM_DIMMING * local_sm


def _cage_sum(grid: np.ndarray) -> np.ndarray:
    """Sum over the four corners of each cell of a 2-D grid: shape (rows - 1, cols - 1)."""
    return grid[:-1, :-1] + grid[:-1, 1:] + grid[1:, :-1] + grid[1:, 1:]


def _crosstalk(a_own: np.ndarray, b_own: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Recorded intensities of the A grid (J + 1, I + 1) and the B grid (J, I) from their own scattering.

    B (j, i) sits in the cage of A (j, i), (j, i + 1), (j + 1, i) and (j + 1, i + 1), its nearest
    neighbours; each column records ``(1 - k n) S`` of its own scattering S and ``k S_j`` of each
    of its n neighbours j of the other sublattice (A columns on the edge of the grid, beyond the
    image's margin, have fewer than four).
    """
    b_recorded = (1 - 4 * k) * b_own + k * _cage_sum(a_own)
    a_neighbours = _cage_sum(np.pad(np.ones_like(b_own), 1))
    a_recorded = (1 - k * a_neighbours) * a_own + k * _cage_sum(np.pad(b_own, 1))
    return a_recorded, b_recorded


def _film_peaks(p: SyntheticParams, ab_ratio: float | None = None) -> tuple[float, float]:
    """Rendered peaks of an undoped A column and of a B column inside the film (or inside a layer
    whose own A:B ratio is ``ab_ratio``), in units of an undoped A column's own scattering: the
    ideal lattice, no gradient (the image's unit, and :attr:`SyntheticParams.rendered_ab_ratio`)."""
    k, ab_ratio = p.crosstalk, p.ab_ratio if ab_ratio is None else ab_ratio
    a_recorded = (1 - 4 * k) + 4 * k / ab_ratio
    b_recorded = (1 - 4 * k) / ab_ratio + 4 * k
    own_sublattice, other_sublattice = _profile_lattice_sums(p)
    return (a_recorded * own_sublattice + b_recorded * other_sublattice,
            b_recorded * own_sublattice + a_recorded * other_sublattice)


def _profile_lattice_sums(p: SyntheticParams) -> tuple[float, float]:
    """Rendered value at a column's centre per unit recorded intensity of every column of its own
    sublattice (itself included), and of every column of the other sublattice, on the ideal lattice.

    The unit column profile is ``(1 - f) N(column_sigma) + f N(skirt_sigma)``, N a 2-D Gaussian of
    unit integral. Summed over a square lattice a Gaussian factorises into two 1-D sums over the
    lattice lines, through the column for its own sublattice and half a cell off it for the
    other. Terms beyond the rendering window (4 sigma) are below 4e-4 of a peak each.
    """
    a = p.lattice_constant_px
    own_sublattice, other_sublattice = 0.0, 0.0
    for share, sigma in ((1 - p.skirt_fraction, p.column_sigma_px), (p.skirt_fraction, p.skirt_sigma_px)):
        lines = np.ceil(WINDOW_SIGMAS * sigma / a) + 1
        steps = a * np.arange(-lines, lines + 1)
        through = np.exp(-(steps**2) / (2 * sigma**2)).sum()
        half_off = np.exp(-((steps + a / 2) ** 2) / (2 * sigma**2)).sum()
        density = share / (2 * np.pi * sigma**2)
        own_sublattice += density * through**2
        other_sublattice += density * half_off**2
    return own_sublattice, other_sublattice


def _drift(xy: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """Apply the drift shear: x += drift_shear * (y - centre row)."""
    out = xy.copy()
    out[:, 0] += p.drift_shear * (xy[:, 1] - _centre(p.shape)[1])
    return out


# --------------------------------------------------------------------------- rendering


def _row_shifts(p: SyntheticParams, rng: np.random.Generator) -> np.ndarray:
    """x shift of every image row: drift shear plus random scan jitter."""
    rows = p.shape[0]
    jitter = rng.normal(0.0, p.scan_jitter_px, size=rows) if p.scan_jitter_px > 0 else np.zeros(rows)
    return p.drift_shear * (np.arange(rows) - _centre(p.shape)[1]) + jitter


def _render_columns(shape: tuple[int, int], xy: np.ndarray, amplitude: np.ndarray, sigma: float,
                    row_shift: np.ndarray) -> np.ndarray:
    """Sum of Gaussian columns at pre-drift positions xy, each image row shifted by row_shift.

    Pixel (x, y) gets ``sum amplitude * exp(-((x - row_shift[y] - X)^2 + (y - Y)^2) / 2 sigma^2)``,
    evaluated only in a window of WINDOW_SIGMAS sigma around each column (widened by the row
    shifts) and accumulated with one bincount: cost ~ columns x window, no per-atom Python loop.
    """
    rows, cols = shape
    ry = int(np.ceil(WINDOW_SIGMAS * sigma))
    span = 2 * ry + 1
    spread = np.max(ndimage.maximum_filter1d(row_shift, span) - ndimage.minimum_filter1d(row_shift, span))
    rx = int(np.ceil(WINDOW_SIGMAS * sigma + spread + 1))  # widened by the row shifts within a window
    yc = np.round(xy[:, 1]).astype(int)
    xc = np.round(xy[:, 0] + row_shift[np.clip(yc, 0, rows - 1)]).astype(int)
    keep = (xc + rx >= 0) & (xc - rx < cols) & (yc + ry >= 0) & (yc - ry < rows)
    xy, amplitude, xc, yc = xy[keep], amplitude[keep], xc[keep], yc[keep]
    r = yc[:, None] + np.arange(-ry, ry + 1)  # (N, wy)
    c = xc[:, None] + np.arange(-rx, rx + 1)  # (N, wx)
    r_in = (r >= 0) & (r < rows)
    shift = row_shift[np.clip(r, 0, rows - 1)]
    gy = amplitude[:, None] * np.exp(-((r - xy[:, 1:2]) ** 2) / (2 * sigma**2))
    dx = c[:, None, :] - shift[:, :, None] - xy[:, 0, None, None]
    values = gy[:, :, None] * np.exp(-(dx**2) / (2 * sigma**2))
    inside = r_in[:, :, None] & ((c >= 0) & (c < cols))[:, None, :]
    index = r[:, :, None] * cols + c[:, None, :]
    return np.bincount(index[inside], weights=values[inside], minlength=rows * cols).reshape(rows, cols)


def _render_skirt(shape: tuple[int, int], xy: np.ndarray, weight: np.ndarray, sigma: float,
                  row_shift: np.ndarray) -> np.ndarray:
    """Sum of 2-D Gaussians of std sigma and integral ``weight`` at pre-drift positions xy, each
    image row shifted by row_shift: pixel (x, y) gets their sum at ``(x - row_shift[y], y)``.

    The skirt is linear in the weights and broad, so instead of a window of 4 sigma per column
    the weights are splatted bilinearly on a pixel grid in the columns' own (unshifted) frame,
    padded so that every shifted row can be read from it, and one Gaussian filter spreads them;
    each image row then reads that canvas at ``x - row_shift[y]`` by linear interpolation. The
    splat keeps each skirt's integral and centre exact and widens it by ``t (1 - t)`` px^2 of
    variance along each axis (t: the column's sub-pixel fraction there), at most 0.25 px^2,
    within 2 % of the narrowest skirt drawn (70 pm at 20 pm per pixel).
    """
    rows, cols = shape
    reach = int(np.ceil(WINDOW_SIGMAS * sigma)) + 1
    pad_x = reach + int(np.ceil(np.abs(row_shift).max())) + 1
    canvas_shape = (rows + 2 * reach, cols + 2 * pad_x)
    x, y = xy[:, 0] + pad_x, xy[:, 1] + reach  # canvas coordinates
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    keep = (x0 >= 0) & (x0 < canvas_shape[1] - 1) & (y0 >= 0) & (y0 < canvas_shape[0] - 1)
    x0, y0, tx, ty, weight = x0[keep], y0[keep], (x - x0)[keep], (y - y0)[keep], weight[keep]
    index = np.concatenate([(y0 + dy) * canvas_shape[1] + x0 + dx for dy in (0, 1) for dx in (0, 1)])
    share = np.concatenate([wy * wx for wy in (1 - ty, ty) for wx in (1 - tx, tx)])
    splat = np.bincount(index, weights=np.tile(weight, 4) * share, minlength=canvas_shape[0] * canvas_shape[1])
    canvas = ndimage.gaussian_filter(splat.reshape(canvas_shape), sigma, mode="constant", truncate=WINDOW_SIGMAS)
    row_start = pad_x - row_shift  # canvas x read by the first pixel of each image row
    left = np.floor(row_start).astype(int)
    t = (row_start - left)[:, None]
    index = ((np.arange(rows) + reach) * canvas_shape[1] + left)[:, None] + np.arange(cols)
    flat = canvas.ravel()
    return (1 - t) * flat[index] + t * flat[index + 1]


def _render_probe(p: SyntheticParams, xy: np.ndarray, recorded: np.ndarray, row_shift: np.ndarray) -> np.ndarray:
    """Columns of integrated intensity ``recorded`` at pre-drift positions xy, each drawn with the
    probe profile: a Gaussian core holding ``1 - skirt_fraction`` of it, plus the skirt."""
    sigma = p.column_sigma_px
    core_peaks = recorded * (1 - p.skirt_fraction) / (2 * np.pi * sigma**2)
    image = _render_columns(p.shape, xy, core_peaks, sigma, row_shift)
    if p.skirt_fraction > 0:
        image += _render_skirt(p.shape, xy, recorded * p.skirt_fraction, p.skirt_sigma_px, row_shift)
    return image


def _background(p: SyntheticParams, rng: np.random.Generator) -> np.ndarray:
    """Smooth background from thickness: a tilted plane plus a broad bump, peak = background."""
    rows, cols = p.shape
    if p.background == 0:
        return np.zeros(p.shape)
    y, x = np.mgrid[0:rows, 0:cols].astype(float)  # numpy (row, col) -> named y, x
    tilt = rng.uniform(0, 2 * np.pi)
    plane = np.cos(tilt) * x + np.sin(tilt) * y
    plane = (plane - plane.min()) / max(np.ptp(plane), 1e-12)
    bx, by = rng.uniform(0, cols), rng.uniform(0, rows)
    width = rng.uniform(0.2, 0.4) * min(rows, cols)
    bump = np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * width**2))
    smooth = plane + bump
    return p.background * smooth / smooth.max()


def _add_noise(clean: np.ndarray, p: SyntheticParams, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts at the dose plus Gaussian read noise; the clean image if dose is None."""
    if p.dose is None:
        return clean
    counts = rng.poisson(p.dose * clean).astype(np.float64)
    if p.read_noise > 0:
        counts += rng.normal(0.0, p.read_noise, size=counts.shape)
    return counts


# --------------------------------------------------------------------------- truth


def _wall_mask(p: SyntheticParams) -> np.ndarray:
    """Pixels within half a unit cell of a change of variant in the (drifted) domain field."""
    rows, cols = p.shape
    y, x = np.mgrid[0:rows, 0:cols].astype(float)  # numpy (row, col) -> named y, x
    x_ideal = x - p.drift_shear * (y - _centre(p.shape)[1])
    label = _variant_at(np.stack([x_ideal.ravel(), y.ravel()], axis=1), p).reshape(rows, cols)
    edge = np.zeros((rows, cols), dtype=bool)
    across_x = label[:, 1:] != label[:, :-1]
    across_y = label[1:, :] != label[:-1, :]
    edge[:, 1:] |= across_x
    edge[:, :-1] |= across_x
    edge[1:, :] |= across_y
    edge[:-1, :] |= across_y
    if not edge.any():
        return edge
    # edge pixels lie about half a pixel from the wall line itself
    return ndimage.distance_transform_edt(~edge) <= p.lattice_constant_px / 2 - 0.5


def _inside(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Points whose centre lies within the pixel-centre extent of the image."""
    rows, cols = shape
    return (xy[:, 0] >= 0) & (xy[:, 0] <= cols - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= rows - 1)


def _ground_truth(p: SyntheticParams, a_columns: _Columns, b_columns: _Columns) -> GroundTruth:
    """Truth for the columns centred inside the image, A first, drift applied to positions."""
    xy, variant, b_disp, sublattice = [], [], [], []
    for name, columns in (("A", a_columns), ("B", b_columns)):
        drifted = _drift(columns.xy, p)
        inside = _inside(drifted, p.shape)
        xy.append(drifted[inside])
        variant.append(columns.variant[inside])
        b_disp.append(columns.b_displacement[inside])
        sublattice.append(np.full(int(inside.sum()), name, dtype="<U1"))
    return GroundTruth(
        xy=np.concatenate(xy),
        sublattice=np.concatenate(sublattice),
        variant=np.concatenate(variant).astype(np.int64),
        b_displacement=np.concatenate(b_disp),
        wall_mask=_wall_mask(p),
        pixel_size_pm=p.pixel_size_pm,
        lattice_constant_px=p.lattice_constant_px,
    )


# --------------------------------------------------------------------------- public


def _make_rng(seed) -> np.random.Generator:
    """A Generator from an int seed, a SeedSequence or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        raise InputError(f"seed = {seed!r}: must be an int or a numpy Generator; pass e.g. seed=0")
    return np.random.default_rng(seed)


def generate(params: SyntheticParams | None = None, seed: int | np.random.Generator = 0) -> SyntheticSample:
    """Render one synthetic HAADF image with its ground truth.

    Parameters
    ----------
    params : SyntheticParams, optional
        Physics and imaging settings; defaults to ``SyntheticParams()``.
    seed : int or numpy.random.Generator
        All randomness (Sm content, scan jitter, background, noise) comes from it, through
        independent child streams, so e.g. changing the dose leaves the Sm content unchanged.
        The lattice and domain geometry are fixed by ``params`` alone.

    Returns
    -------
    SyntheticSample
        ``image`` (rows, cols) float64: counts, or if dose is None units of the rendered peak of
        an undoped A column inside the film (see :attr:`SyntheticParams.rendered_ab_ratio`).
    """
    p = SyntheticParams() if params is None else params
    if not isinstance(p, SyntheticParams):
        raise InputError(f"params: got {type(p).__name__}, expected SyntheticParams; "
                         "build one with SyntheticParams(...)")
    rng_sm, rng_scan, rng_background, rng_noise = _make_rng(seed).spawn(4)
    profile_reach = WINDOW_SIGMAS * max(p.column_sigma_px, p.skirt_sigma_px)
    lattice = _build_lattice(p, margin_px=profile_reach + p.lattice_constant_px + 4 * p.scan_jitter_px)
    a_columns, b_columns = _place_columns(p, lattice)
    recorded = _recorded_intensities(p, lattice.a_ideal.shape[:2], a_columns, b_columns, rng_sm)
    rendered_xy = np.concatenate([a_columns.xy, b_columns.xy + np.asarray(p.mistilt_offset_px)])
    clean = _render_probe(p, rendered_xy, recorded, _row_shifts(p, rng_scan))
    image = _add_noise(clean + _background(p, rng_background), p, rng_noise)
    return SyntheticSample(image=image, truth=_ground_truth(p, a_columns, b_columns), params=p)


def _draw_wall_angle(rng: np.random.Generator, lattice_rotation_deg: float) -> float:
    """A low-index wall direction (0/45/90/135 deg in the lattice frame) 80 % of the time, else any."""
    low_index = rng.choice([0.0, 45.0, 90.0, 135.0]) + lattice_rotation_deg
    arbitrary = rng.uniform(0.0, 180.0)
    return float(low_index if rng.random() < 0.8 else arbitrary)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One draw, uniform in the logarithm between low and high (one uniform number consumed)."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _draw_fields(rng: np.random.Generator) -> dict:
    """Draw every varied field, always in the same order, so fixing one leaves the others unchanged.

    Ranges: domains among stripes / two_families / needle; lattice rotation +/-5 deg; wall
    angles low-index in the lattice frame 80 % of the time; the second family 90 deg (60 %)
    or 45 / 135 deg from the first; periods 6-16 cells; needle 5-12 cells wide, tip at 0.4-0.8;
    Sm 0-0.2 (antipolar band of 20-40 % above the default 0.12 threshold); pixel 12-20 pm;
    displacement 25-35 pm; the columns' own A:B log-uniform 0.667-10 (B/A 0.1 to 1.5: Bi/Fe and
    Pb/Ti to Sr/Ru); column sigma 30-40 pm; dose log-uniform 80-400; read noise 0-2 counts;
    jitter 0-0.4 px; drift shear +/-0.02; background 0-0.3; mis-tilt +/-0.3 px; skirt 15-45 %
    of each column with sigma 70-130 pm; cross-talk 0-0.03 per neighbour (thin to thick films).
    New fields' draws come last, so that the earlier fields keep their values for a seed.
    """
    rotation = float(rng.uniform(-5.0, 5.0))
    angle = _draw_wall_angle(rng, rotation)
    return dict(
        domains=str(rng.choice(["stripes", "two_families", "needle"])),
        lattice_rotation_deg=rotation,
        wall_angle_deg=angle,
        wall_angle2_deg=float(angle + rng.choice([90.0, 45.0, 135.0], p=[0.6, 0.2, 0.2])),
        period_cells=float(rng.uniform(6.0, 16.0)),
        period2_cells=float(rng.uniform(6.0, 16.0)),
        wall_offset_cells=float(rng.uniform(0.1, 0.4)),
        variants=tuple(int(v) for v in rng.choice(4, size=2, replace=False)),
        needle_width_cells=float(rng.uniform(5.0, 12.0)),
        needle_length_fraction=float(rng.uniform(0.4, 0.8)),
        sm_fraction=float(rng.uniform(0.0, 0.2)),
        antipolar_area_fraction=float(rng.uniform(0.2, 0.4)),
        antipolar_shift_pm=float(rng.uniform(15.0, 25.0)),
        pixel_size_pm=float(rng.uniform(12.0, 20.0)),
        displacement_pm=float(rng.uniform(25.0, 35.0)),
        ab_ratio=_log_uniform(rng, 1 / 1.5, 10.0),
        column_sigma_pm=float(rng.uniform(30.0, 40.0)),
        dose=_log_uniform(rng, 80.0, 400.0),
        read_noise=float(rng.uniform(0.0, 2.0)),
        scan_jitter_px=float(rng.uniform(0.0, 0.4)),
        drift_shear=float(rng.uniform(-0.02, 0.02)),
        background=float(rng.uniform(0.0, 0.3)),
        mistilt_offset_px=tuple(float(v) for v in rng.uniform(-0.3, 0.3, size=2)),
        skirt_fraction=float(rng.uniform(0.15, 0.45)),
        skirt_sigma_pm=float(rng.uniform(70.0, 130.0)),
        crosstalk=float(rng.uniform(0.0, 0.03)),
    )


def family_fields(family: str, rng: np.random.Generator) -> dict:
    """Fields that make an image of ``family`` (one of :data:`FAMILIES`).

    A domain pattern sets ``domains``; ``"phase_boundary"`` keeps the drawn film and puts it on
    a substrate covering 20-50 % of the image, with an interface tilted by up to 10 degrees and
    its columns' own A:B log-uniform 0.667-2.5: B/A from 0.4 (SrTiO3) to 1.5 (SrRuO3, Ru about
    as bright as or brighter than Sr), so that the brightness order flips at the interface
    (A:B below 1) on about a third of the images; the film's own A:B is drawn from 0.667-10.
    """
    if family == "phase_boundary":
        return dict(substrate_fraction=float(rng.uniform(0.2, 0.5)), substrate_ab_ratio=_log_uniform(rng, 1 / 1.5, 2.5),
                    interface_tilt_deg=float(rng.uniform(-10.0, 10.0)))
    if family not in DOMAIN_KINDS:
        raise InputError(f"unknown image family {family!r}; use one of {FAMILIES}")
    return dict(domains=family)


def sample_params(rng: np.random.Generator, **fixed) -> SyntheticParams:
    """Draw varied parameters of an image with domain walls; keyword arguments fix fields.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draw.
    **fixed
        SyntheticParams fields to hold (e.g. ``shape=(256, 256)``); the others are drawn from
        the ranges listed in ``_draw_fields`` (shape, lattice constant and antipolar threshold
        keep their defaults). With ``dose=None`` and no read noise given, read noise is 0.

    Returns
    -------
    SyntheticParams
        Validated; a fixed value that is out of range raises InputError.
    """
    valid = [f.name for f in fields(SyntheticParams)]
    unknown = sorted(set(fixed) - set(valid))
    if unknown:
        raise InputError(f"sample_params: unknown field(s) {unknown}; fix only SyntheticParams fields: {valid}")
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"sample_params: rng is {type(rng).__name__}, expected a numpy Generator; "
                         "pass np.random.default_rng(seed)")
    drawn = _draw_fields(rng)
    if fixed.get("dose", drawn["dose"]) is None and "read_noise" not in fixed:
        drawn["read_noise"] = 0.0
    return SyntheticParams(**{**drawn, **fixed})
