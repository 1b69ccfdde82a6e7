"""The one search-space schema: every choice the workflow offers, in one place.

The env's action space, the searchers (random, grid, Bayesian) and the command line are all
built from :data:`SEARCH_SPACE`, so a new hyperparameter is added here and nowhere else.

Each parameter has a finite ``grid`` of values (what a ``MultiDiscrete`` action or a grid
search enumerates) and, for numeric parameters, the continuous ``low``/``high`` range a
Bayesian optimiser may sample. Parameters that only matter for some choices carry an
``active_when`` condition; :meth:`SearchSpace.canonical` resets inactive ones to their default
so that equivalent configurations compare (and cache) equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    Parameters
    ----------
    name : key in a configuration dict.
    kind : "categorical", "int" or "float".
    grid : the finite values offered (ordered); the first is not special, ``default`` is.
    default : value used when the parameter is inactive or not given.
    help : one line for users (command line, docs).
    unit : physical unit of numeric values ("a" means lattice constants).
    low, high : continuous range for numeric parameters (defaults to the grid's ends).
    active_when : {other parameter: allowed values}; all must hold for this one to matter.
    """

    name: str
    kind: str
    grid: tuple
    default: Any
    help: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    active_when: Mapping[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in ("categorical", "int", "float"):
            raise ValueError(f"Param {self.name}: unknown kind {self.kind!r}")
        if self.default not in self.grid:
            raise ValueError(f"Param {self.name}: default {self.default!r} is not in its grid")
        if self.kind != "categorical":
            object.__setattr__(self, "low", self.grid[0] if self.low is None else self.low)
            object.__setattr__(self, "high", self.grid[-1] if self.high is None else self.high)

    def is_active(self, config: Mapping[str, Any]) -> bool:
        return all(config.get(k) in allowed for k, allowed in self.active_when.items())

    def coerce(self, value: Any) -> Any:
        """Check one value and return it in the parameter's type (or raise InputError)."""
        if self.kind == "categorical":
            if value not in self.grid:
                raise InputError(
                    f"{self.name}={value!r} is not one of {list(self.grid)}; pick one of those"
                )
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{self.name}={value!r} is not a number ({self.help})") from None
        if not (self.low <= number <= self.high):
            raise InputError(
                f"{self.name}={value!r} is outside [{self.low}, {self.high}] {self.unit}".rstrip()
            )
        if self.kind == "int":
            if number != int(number):
                raise InputError(f"{self.name}={value!r} must be a whole number")
            return int(number)
        return number


@dataclass(frozen=True)
class SearchSpace:
    """An ordered collection of :class:`Param` with the operations searchers need.

    ``name`` is how users pick the space (``--space``); ``coarse`` gives the few values per
    parameter of the space's coarse grid (the grid searcher's first pass and a benchmark's
    oracle), parameters not named keeping their whole grid.
    """

    params: tuple[Param, ...]
    name: str = "descriptors"
    coarse: Mapping[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        for position, param in enumerate(self.params):
            later = set(param.active_when) - set(self.names[:position])
            if later:
                raise ValueError(f"Param {param.name}: active_when names {sorted(later)}, which must come before it")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def default(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def canonical(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Validated full configuration with inactive parameters reset to their defaults.

        Missing parameters take their defaults; unknown names raise InputError.
        """
        unknown = set(config) - set(self.names)
        if unknown:
            raise InputError(
                f"unknown parameter(s) {sorted(unknown)}; the search space has {list(self.names)}"
            )
        canonical = {}
        for p in self.params:  # in order: a condition reads the canonical values before it
            value = p.coerce(config.get(p.name, p.default))
            canonical[p.name] = value if p.is_active(canonical) else p.default
        return canonical

    def restricted(self, choices: Mapping[str, tuple]) -> SearchSpace:
        """This space with categorical parameters narrowed to ``choices`` (grid order kept; the
        default kept where allowed, else the first allowed value); ``self`` where nothing is
        narrowed; coarse levels keep what is left (all of the grid where none is).

        Only parameters that are always active can be narrowed: an inactive parameter takes its
        default, so a new default would make the same configuration read differently here and in
        this space. So configurations of the narrowed space are canonical in this one too.
        Raises InputError where no choice of a parameter is left."""
        narrowed = {}
        for name, allowed in choices.items():
            param = self[name]
            if param.kind != "categorical" or param.active_when:
                raise ValueError(f"only categorical parameters that are always active can be narrowed, not {name}")
            kept = tuple(value for value in param.grid if value in allowed)
            if not kept:
                raise InputError(f"none of {name}={list(param.grid)} of the {self.name!r} space applies here")
            if kept != param.grid:
                narrowed[name] = replace(param, grid=kept, default=param.default if param.default in kept else kept[0])
        if not narrowed:
            return self
        coarse = {name: levels for name, levels in self.coarse.items() if name not in narrowed}
        for name, param in narrowed.items():
            levels = tuple(value for value in self.coarse.get(name, ()) if value in param.grid)
            if levels:
                coarse[name] = levels
        return SearchSpace(tuple(narrowed.get(p.name, p) for p in self.params), self.name, coarse)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A uniformly random grid configuration (canonical)."""
        return self.canonical({p.name: p.grid[rng.integers(len(p.grid))] for p in self.params})

    def grid(self) -> list[dict[str, Any]]:
        """Every distinct canonical configuration of the grid, in a fixed order."""
        return [
            {p.name: p.grid[i] for p, i in zip(self.params, row)} for row in self.grid_indices().tolist()
        ]

    def grid_indices(self) -> np.ndarray:
        """(M, P) grid indices of every distinct canonical configuration, in a fixed order.

        Built in index space: indices of inactive parameters are set to their default's (column
        by column, each condition reading the canonical columns before it), then duplicates are
        dropped, keeping first occurrences in row-major order.
        """
        canonical = np.indices(self.grid_sizes).reshape(len(self.params), -1).T.copy()
        for column, p in enumerate(self.params):
            active = np.ones(len(canonical), dtype=bool)
            for other, allowed in p.active_when.items():
                other_column = self.names.index(other)
                allowed_indices = [i for i, v in enumerate(self[other].grid) if v in allowed]
                active &= np.isin(canonical[:, other_column], allowed_indices)
            canonical[~active, column] = p.grid.index(p.default)
        _, first = np.unique(canonical, axis=0, return_index=True)
        return canonical[np.sort(first)]

    @property
    def grid_sizes(self) -> tuple[int, ...]:
        """Number of grid values per parameter (the ``nvec`` of a MultiDiscrete action)."""
        return tuple(len(p.grid) for p in self.params)

    def from_indices(self, indices) -> dict[str, Any]:
        """Canonical configuration from one grid index per parameter."""
        indices = np.asarray(indices).ravel()
        if indices.shape != (len(self.params),):
            raise InputError(f"expected {len(self.params)} indices, got shape {indices.shape}")
        for p, i in zip(self.params, indices):
            if not 0 <= i < len(p.grid):
                raise InputError(f"index {i} for {p.name} is outside 0..{len(p.grid) - 1}")
        return self.canonical({p.name: p.grid[int(i)] for p, i in zip(self.params, indices)})

    def to_indices(self, config: Mapping[str, Any]) -> np.ndarray:
        """Grid index per parameter of a canonical configuration (nearest grid value)."""
        config = self.canonical(config)
        out = []
        for p in self.params:
            if p.kind == "categorical":
                out.append(p.grid.index(config[p.name]))
            else:
                out.append(int(np.argmin(np.abs(np.asarray(p.grid, float) - config[p.name]))))
        return np.asarray(out, dtype=np.int64)


#: Descriptors of the hand-made space with a few features per site, which a mixture fits as
#: they are. Image patches have hundreds to thousands (a 2.5 x 2.5 a window at 18 px per a is
#: 2,025 pixels), and a full-covariance mixture on them took 35 s on a 2048 x 2048 frame and
#: 109 s on a 4096 x 4096 one (benchmarks/full_frame.py), so patches are always reduced by PCA.
LOW_DIMENSIONAL = ("displacement", "lattice")


def _clustering_params(reduction_when: Mapping[str, tuple]) -> tuple[Param, ...]:
    """The stage after the descriptor, the same in every space: reduction and clustering.

    ``reduction_when`` says when reducing is a choice; otherwise PCA (the default) is applied.
    """
    return (
        Param(
            "reduction",
            "categorical",
            ("none", "pca"),
            "pca",
            "dimensionality reduction (PCA is always applied where it is not a choice)",
            active_when=reduction_when,
        ),
        *CLUSTERING_PARAMS,
    )


#: The parameters after the reduction, shared by every space.
CLUSTERING_PARAMS = (
    Param(
        "n_components",
        "int",
        (2, 3, 4, 6, 8, 12, 16),
        4,
        "PCA components kept",
        active_when={"reduction": ("pca",)},
    ),
    Param(
        "clustering",
        "categorical",
        ("gmm", "kmeans", "bgmm"),
        "gmm",
        "clustering method (Gaussian mixture, k-means, Bayesian Gaussian mixture)",
    ),
    Param(
        "covariance",
        "categorical",
        ("full", "tied", "diag", "spherical"),
        "full",
        "covariance type of the mixture",
        active_when={"clustering": ("gmm", "bgmm")},
    ),
    Param("n_clusters", "int", (2, 3, 4, 5, 6, 7, 8), 4, "number of clusters"),
)
#: Every parameter of the stage after the descriptor (what a descriptor does not depend on).
CLUSTERING_STAGE = ("reduction", *(p.name for p in CLUSTERING_PARAMS))
#: Coarse levels of the clustering stage: a small and a large PCA size, the full and the
#: diagonal covariance (tied is close to full, spherical to k-means, which the grid keeps), and
#: every cluster count 2..8.
_CLUSTERING_COARSE = {"n_components": (3, 8), "covariance": ("full", "diag")}

_PATCH_DESCRIPTORS = ("patch", "patch+displacement")

#: Hand-made descriptors. Coarse grid: windows at the lower and upper quarter of their range (a
#: probe on synthetic images found the best patches at both small and large windows, often
#: anisotropic), every descriptor and clustering: 1,330 canonical configurations (16 patch
#: settings x 2 PCA sizes + 2 low-dimensional descriptors x 3 reductions, x 5 clusterings x 7
#: cluster counts).
SEARCH_SPACE = SearchSpace(
    (
        Param(
            "descriptor",
            "categorical",
            ("patch", "displacement", "lattice", "patch+displacement"),
            "patch",
            "local descriptor per atom (see ferrogym.workflows.descriptors)",
        ),
        Param(
            "patch_sites",
            "categorical",
            ("all", "A", "B"),
            "B",
            "atoms the image patches are centred on",
            active_when={"descriptor": ("patch",)},
        ),
        Param(
            "window_x",
            "float",
            (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5),
            1.0,
            "patch width",
            unit="a",
            active_when={"descriptor": _PATCH_DESCRIPTORS},
        ),
        Param(
            "window_y",
            "float",
            (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5),
            1.0,
            "patch height",
            unit="a",
            active_when={"descriptor": _PATCH_DESCRIPTORS},
        ),
        *_clustering_params({"descriptor": LOW_DIMENSIONAL}),
    ),
    name="descriptors",
    coarse={"window_x": (0.75, 2.0), "window_y": (0.75, 2.0), **_CLUSTERING_COARSE},
)

#: The rotation-invariant VAE (:mod:`.rvae`) as the descriptor, its training settings as
#: actions. A space of its own because an evaluation costs a training (about a second at
#: 512 x 512 against milliseconds for a hand-made descriptor): mixed into one space, budgets
#: counted in evaluations would hide a hundredfold difference in cost. Coarse grid: 48 trainings
#: (two windows, latent sizes and KL weights, every invariance, both site choices) x the
#: clustering stage.
VAE_SPACE = SearchSpace(
    (
        Param("descriptor", "categorical", ("vae",), "vae", "the rotation-invariant VAE of atom-centred patches"),
        Param("patch_sites", "categorical", ("all", "A", "B"), "B", "atoms the patches are centred on"),
        Param("window", "float", (1.0, 1.5, 2.0, 2.5, 3.0), 2.0, "side of the square patch", unit="a"),
        Param("latent_dim", "int", (1, 2, 3, 4, 6), 2, "content latents"),
        Param("kl_weight", "float", (0.1, 0.3, 1.0, 3.0, 10.0), 1.0, "weight of the KL terms (beta)"),
        Param(
            "invariance",
            "categorical",
            ("none", "rotation", "rotation+translation"),
            "rotation+translation",
            "what the decoder explains by a transform rather than by content",
        ),
        Param("epochs", "int", (10, 20, 40, 80), 20, "training epochs (passes over the patches)"),
        *_clustering_params({}),
    ),
    name="vae",
    coarse={"patch_sites": ("all", "B"), "window": (1.5, 2.5), "latent_dim": (2, 4), "kl_weight": (0.3, 3.0),
            "epochs": (20,), **_CLUSTERING_COARSE},
)

SPACES = {space.name: space for space in (SEARCH_SPACE, VAE_SPACE)}


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The space called ``name`` (``descriptors`` or ``vae``); a SearchSpace is returned as is."""
    if isinstance(name, SearchSpace):
        return name
    if name not in SPACES:
        raise InputError(f"unknown search space {name!r}; use one of {sorted(SPACES)}")
    return SPACES[name]
