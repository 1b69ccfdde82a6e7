"""Physics-grade HAADF-STEM images of perovskite films, with exact truth, by abTEM's PRISM.

:func:`simulate` builds a cubic ABO3 supercell seen along [001] (A at the cell corners, B at the
body centre, O on the face centres; the pure O columns, invisible in HAADF, stay in place), gives
each unit cell a polar variant and moves its B atoms *against* that variant's polarization
(``POLARIZATION_DIRECTIONS``), optionally puts a dopant on a share of the A atoms, and images it
as a microscope does: a 200 kV probe of 20 mrad convergence, an annular detector of 70-150 mrad,
frozen phonons (thermal diffuse scattering, which is what HAADF records), a finite source
(a Gaussian blur of the image) and, with :func:`with_dose`, Poisson counts. Needs the optional
extra: ``pip install 'ferrogym[simulate]'`` (abtem and ase; imported only inside functions).

Registration, the point of the exercise: the scan is abTEM's ``GridScan`` from (0, 0) to the
supercell's extent L with ``n`` positions and ``endpoint=False``, so probe position k sits at
``k L / n``: pixel index k *is* that position, and a column at x Angstrom is at pixel
``x n / L`` (pixel centres at integers, as in :mod:`.synthetic`). The crystal is shifted by a
quarter cell so that no column sits on the image border, where the periodic image wraps; the
truth then holds every column of the supercell, all inside the image. A column's truth position
is the mean position of its atoms over the frozen-phonon configurations, its ideal site: each
atom's thermal displacements are centred over the configurations, since a few independent draws
would leave each column a few pm (0.07 px with 3 draws) off its site, an artefact of sampling
that a real exposure, averaging countless phonon states, does not have. The O atoms between the
B atoms of a B column move with them (a B-O column off-centres as a whole): an O left at the
cell centre would pull the column's image 0.06 px back towards it.

PRISM's interpolation factor is chosen so that the probe's window spans ``prism_window_cells``
unit cells (2: 7.9 Angstrom, where a 20 mrad probe and its spread to the neighbouring columns
fit; on a 4 x 4 cell test the images are within 3 % of a full multislice, against 9 % for a
one-cell window). The periodic supercell makes stripe domains commensurate with it: the domain
width times the number of variants must divide the supercell.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from .errors import InputError
from .synthetic import POLARIZATION_DIRECTIONS, GroundTruth

__all__ = ["WALL_NORMALS", "Simulation", "SimulationParams", "simulate", "with_dose"]

#: Directions of the normal of stripe walls: "x" (walls run along y), "y", or "diagonal"
#: (walls along the cell diagonal x = y, a 45 degree wall).
WALL_NORMALS = ("x", "y", "diagonal")
_INSTALL = "pip install 'ferrogym[simulate]'"


@dataclass(frozen=True)
class SimulationParams:
    """What to simulate; validated on construction.

    Attributes
    ----------
    cells : supercell side in unit cells (x and y; periodic, as abTEM is).
    thickness_cells : film thickness along the beam, in unit cells.
    lattice_constant_pm : cubic lattice constant a.
    displacement_pm : B off-centring against the polarization, each polar domain.
    variants : the polar variants (0..3) the stripes take in turn across the wall normal; one
        variant is one domain without walls.
    domain_cells : stripe width in unit cells; ``domain_cells * len(variants)`` divides ``cells``.
    wall_normal : one of :data:`WALL_NORMALS`.
    a_species, b_species : chemical symbols of the A and B atoms.
    dopant, dopant_fraction : symbol put on this share of the A atoms, drawn atom by atom.
    energy_kev, convergence_mrad : the probe; its CTF is also PRISM's expansion cutoff.
    detector_mrad : inner and outer angle of the annular detector.
    defocus_pm : the probe's defocus; aberrations : further abTEM CTF coefficients (Angstrom,
        radians), e.g. ``{"C30": 1e4}``.
    source_sigma_pm : standard deviation of the effective source (incoherent Gaussian blur).
    phonon_configs : frozen-phonon configurations averaged (at least 2: each atom's displacements
        are centred over them). Time grows with them; so does precision: channelling answers the
        displacements nonlinearly, so a small ensemble still leaves each Bi column's image off its
        site, 0.07 px rms per axis with 2 configurations, 0.035 px with 8 (16 px per cell).
    sigma_a_pm, sigma_b_pm, sigma_o_pm : thermal displacement per direction of A, B and O atoms
        (BiFeO3 at room temperature: about 9, 6.5 and 8.5 pm).
    px_per_cell : scan positions per lattice constant (16: 24.75 pm per px).
    potential_sampling_pm : the potential's grid; 5.5 pm keeps scattering to 152 mrad at 200 kV,
        past the detector's outer edge (abTEM's antialias cutoff is 2/3 of Nyquist).
    prism_window_cells : the probe window of PRISM in unit cells; divides ``cells``.
    seed : draws of the dopant and the phonon configurations.
    device : "auto" (the GPU when CuPy is installed), "cpu" or "gpu".
    workers : threads abTEM's dask scheduler may use on the CPU.
    """

    cells: int = 16
    thickness_cells: int = 8
    lattice_constant_pm: float = 396.0
    displacement_pm: float = 30.0
    variants: tuple[int, ...] = (0,)
    domain_cells: int = 8
    wall_normal: str = "x"
    a_species: str = "Bi"
    b_species: str = "Fe"
    dopant: str = "Sm"
    dopant_fraction: float = 0.0
    energy_kev: float = 200.0
    convergence_mrad: float = 20.0
    detector_mrad: tuple[float, float] = (70.0, 150.0)
    defocus_pm: float = 0.0
    aberrations: dict = field(default_factory=dict)
    source_sigma_pm: float = 25.0
    phonon_configs: int = 2
    sigma_a_pm: float = 9.0
    sigma_b_pm: float = 6.5
    sigma_o_pm: float = 8.5
    px_per_cell: int = 16
    potential_sampling_pm: float = 5.5
    prism_window_cells: int = 2
    seed: int = 0
    device: str = "auto"
    workers: int = 2

    def __post_init__(self):
        object.__setattr__(self, "variants", tuple(int(v) for v in self.variants))
        object.__setattr__(self, "detector_mrad", tuple(float(v) for v in self.detector_mrad))
        problems = []
        if not self.variants or any(v not in range(4) for v in self.variants):
            problems.append(f"variants {self.variants} must be polar variants 0..3")
        if self.wall_normal not in WALL_NORMALS:
            problems.append(f"wall_normal {self.wall_normal!r} is not one of {WALL_NORMALS}")
        if len(self.variants) > 1 and (self.domain_cells < 1 or self.cells % (self.domain_cells * len(self.variants))):
            problems.append(f"{len(self.variants)} stripes of {self.domain_cells} cells do not repeat across "
                            f"{self.cells} cells; the periodic supercell needs them commensurate")
        if self.cells % self.prism_window_cells:
            problems.append(f"prism_window_cells {self.prism_window_cells} must divide cells {self.cells}")
        if not 0 <= self.dopant_fraction <= 1:
            problems.append(f"dopant_fraction {self.dopant_fraction} is outside 0..1")
        if not 0 <= self.displacement_pm < self.lattice_constant_pm / 4:
            problems.append(f"displacement_pm {self.displacement_pm} must be in [0, a/4)")
        if not 0 < self.detector_mrad[0] < self.detector_mrad[1]:
            problems.append(f"detector_mrad {self.detector_mrad} must be 0 < inner < outer")
        if self.device not in ("auto", "cpu", "gpu"):
            problems.append(f"device {self.device!r} is not auto, cpu or gpu")
        if min(self.cells, self.thickness_cells, self.px_per_cell, self.workers) < 1 or self.phonon_configs < 2:
            problems.append("cells, thickness_cells, px_per_cell and workers must be >= 1, phonon_configs >= 2")
        if problems:
            raise InputError("SimulationParams: " + "; ".join(problems))

    @property
    def pixel_size_pm(self) -> float:
        return self.lattice_constant_pm / self.px_per_cell

    def cell_variants(self) -> np.ndarray:
        """Variant of each unit cell, ``(cells, cells)`` indexed ``[j, i]`` (row j = y, column i = x)."""
        j, i = np.mgrid[: self.cells, : self.cells]
        across = {"x": i, "y": j, "diagonal": (i - j) % self.cells}[self.wall_normal]
        return np.asarray(self.variants)[(across // self.domain_cells) % len(self.variants)]


@dataclass(frozen=True)
class Simulation:
    """A noise-free image (float64, 1 at the median A column), its truth and how it was made."""

    image: np.ndarray
    truth: GroundTruth
    parameters: dict


def simulate(params: SimulationParams) -> Simulation:
    """Simulate the HAADF image of ``params`` with abTEM's PRISM; see the module docs."""
    abtem, dask = _import_simulator()
    device = params.device if params.device != "auto" else "gpu" if importlib.util.find_spec("cupy") else "cpu"
    a = params.lattice_constant_pm / 100
    extent = params.cells * a
    configs, column_of, is_a = _configurations(params)
    interpolation = params.cells // params.prism_window_cells
    gpts = _potential_gpts(params, interpolation)
    potential = abtem.Potential(abtem.AtomsEnsemble(configs), gpts=gpts, slice_thickness=a / 2,
                                projection="infinite", device=device)
    s_matrix = abtem.SMatrix(potential=potential, energy=params.energy_kev * 1e3,
                             semiangle_cutoff=params.convergence_mrad, interpolation=interpolation, device=device)
    ctf = abtem.CTF(semiangle_cutoff=params.convergence_mrad, energy=params.energy_kev * 1e3,
                    aberration_coefficients={"C10": -params.defocus_pm / 100, **params.aberrations})
    side = params.cells * params.px_per_cell
    scan = abtem.GridScan(start=(0.0, 0.0), end=(extent, extent), gpts=(side, side), endpoint=False)
    detector = abtem.AnnularDetector(inner=params.detector_mrad[0], outer=params.detector_mrad[1])
    cutoff = min(s_matrix.cutoff_angles)  # the antialiased potential's largest scattering angle
    if cutoff < params.detector_mrad[1]:
        raise InputError(f"the potential sampling {params.potential_sampling_pm} pm scatters only to {cutoff:.0f} "
                         f"mrad, inside the detector's {params.detector_mrad[1]:.0f} mrad; sample finer")
    start = time.perf_counter()
    with abtem.config.set({"device": device, "diagnostics.progress_bar": False}), \
            dask.config.set(scheduler="threads", num_workers=params.workers):
        measurement = s_matrix.scan(scan=scan, detectors=detector, ctf=ctf).compute()
    seconds = time.perf_counter() - start
    image = np.asarray(measurement.to_cpu().array, dtype=float).T  # abTEM's axes are (x, y)
    if params.source_sigma_pm > 0:
        image = ndimage.gaussian_filter(image, params.source_sigma_pm / params.pixel_size_pm, mode="wrap")
    truth = _truth(params, configs, column_of, is_a)
    a_sites = np.rint(truth.xy[truth.sublattice == "A"]).astype(int)
    image = image / np.median(image[a_sites[:, 1], a_sites[:, 0]])
    parameters = {**asdict(params), "pixel_size_pm": params.pixel_size_pm, "prism_interpolation": interpolation,
                  "potential_gpts": gpts, "scattering_cutoff_mrad": cutoff, "simulate_seconds": round(seconds, 1),
                  "device_used": device, "abtem_version": abtem.__version__, "ase_version": _ase_version()}
    return Simulation(image, truth, parameters)


def with_dose(image: np.ndarray, dose: float, seed: int) -> np.ndarray:
    """Poisson counts (uint16) of a noise-free image scaled to ``dose`` counts where it is 1."""
    counts = np.random.default_rng(seed).poisson(dose * np.clip(image, 0, None))
    if counts.max() > np.iinfo(np.uint16).max:
        raise InputError(f"dose {dose} gives {counts.max()} counts, more than uint16 holds; lower it")
    return counts.astype(np.uint16)


# --------------------------------------------------------------------------- the crystal


def _configurations(params: SimulationParams):
    """The frozen-phonon configurations (ASE Atoms), each atom's column index, and which
    columns are A columns (A columns ``0..cells^2 - 1``, then B, then O columns: -1)."""
    from ase import Atoms

    n, nz, a = params.cells, params.thickness_cells, params.lattice_constant_pm / 100
    rng = np.random.default_rng(params.seed)
    j, i = (g.ravel() for g in np.mgrid[:n, :n])
    shift = -params.displacement_pm / 100 * POLARIZATION_DIRECTIONS[params.cell_variants()[j, i]]
    corner = np.column_stack([i, j]) * a + a / 4  # a quarter cell in: no column on the border
    planes = np.arange(nz) * a
    # each layer k: A at the corner (z = k a), B at the centre ((k + 1/2) a), O at the three face centres;
    # the O between two B atoms of a column moves with them: the column off-centres as a whole
    sites = [(corner, 0.0, "A"), (corner + a / 2 + shift, a / 2, "B"), (corner + a / 2 + shift, 0.0, "O"),
             (corner + [a / 2, 0], a / 2, "O"), (corner + [0, a / 2], a / 2, "O")]
    xyz, symbols, column = [], [], []
    columns = {"A": np.arange(n * n), "B": n * n + np.arange(n * n), "O": np.full(n * n, -1)}
    for xy, dz, kind in sites:
        for z in planes:
            xyz.append(np.column_stack([xy, np.full(len(xy), z + dz)]))
            column.append(columns[kind])
            if kind == "A":
                doped = rng.random(n * n) < params.dopant_fraction
                symbols += [params.dopant if d else params.a_species for d in doped]
            else:
                symbols += [params.b_species if kind == "B" else "O"] * (n * n)
    atoms = Atoms(symbols, positions=np.vstack(xyz), cell=[n * a, n * a, nz * a], pbc=True)
    sigma = np.array([{"O": params.sigma_o_pm, params.b_species: params.sigma_b_pm}.get(s, params.sigma_a_pm)
                      for s in symbols]) / 100
    # each atom's displacements are centred over the configurations (and rescaled to keep sigma):
    # every column then sits at its site on average, as in a real crystal, and not a few pm off
    # by the chance of a few draws
    m = params.phonon_configs
    kicks = rng.standard_normal((m, len(atoms), 3))
    kicks = (kicks - kicks.mean(axis=0)) * np.sqrt(m / (m - 1)) * sigma[:, None]
    configs = []
    for kick in kicks:
        moved = atoms.copy()
        moved.positions += kick
        configs.append(moved)
    return configs, np.concatenate(column), np.arange(2 * n * n) < n * n


def _truth(params: SimulationParams, configs, column_of: np.ndarray, is_a: np.ndarray) -> GroundTruth:
    """Each cation column's mean position over its atoms and the configurations, in px."""
    n = params.cells
    scale = params.px_per_cell / (params.lattice_constant_pm / 100)  # px per Angstrom
    cation = column_of >= 0
    mean_xy = np.mean([c.positions[cation, :2] for c in configs], axis=0)
    xy = np.column_stack([np.bincount(column_of[cation], w, minlength=2 * n * n) for w in mean_xy.T])
    xy = xy / np.bincount(column_of[cation], minlength=2 * n * n)[:, None] * scale
    j, i = (g.ravel() for g in np.mgrid[:n, :n])
    variant = np.tile(params.cell_variants()[j, i], 2)
    b_shift = -params.displacement_pm / params.pixel_size_pm * POLARIZATION_DIRECTIONS[variant]
    b_displacement = np.where(is_a[:, None], 0.0, b_shift)
    return GroundTruth(xy=xy, sublattice=np.where(is_a, "A", "B"), variant=variant, b_displacement=b_displacement,
                       wall_mask=_wall_mask(params), pixel_size_pm=params.pixel_size_pm,
                       lattice_constant_px=float(params.px_per_cell))


def _wall_mask(params: SimulationParams) -> np.ndarray:
    """Pixels within half a cell of a cell of another variant (periodic, as the supercell is)."""
    p = params.px_per_cell
    side = params.cells * p
    # cell (i, j) spans pixels [i p + p / 4, (i + 1) p + p / 4) (the quarter-cell shift)
    index = np.floor((np.arange(side) - p / 4) / p).astype(int) % params.cells
    field_ = params.cell_variants()[index[:, None], index[None, :]]
    radius = p // 2
    disk = np.hypot(*np.mgrid[-radius: radius + 1, -radius: radius + 1]) <= radius
    return ndimage.maximum_filter(field_, footprint=disk, mode="wrap") != ndimage.minimum_filter(
        field_, footprint=disk, mode="wrap")


def _potential_gpts(params: SimulationParams, interpolation: int) -> int:
    """Grid points across the supercell: at most ``potential_sampling_pm`` apart, a multiple
    of PRISM's interpolation factor."""
    points = params.cells * params.lattice_constant_pm / params.potential_sampling_pm
    return int(np.ceil(points / interpolation)) * interpolation


def _import_simulator():
    try:
        import abtem
        import dask
    except ImportError as error:
        raise InputError(f"simulating images needs abTEM and ASE ({error.name} is missing): {_INSTALL}") from None
    return abtem, dask


def _ase_version() -> str:
    import ase

    return ase.__version__
