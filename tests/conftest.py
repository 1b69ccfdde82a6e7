"""Shared fixtures: the real-data folder and one synthetic sample with its Workflow.

Atom finding on a 512 x 512 image takes about half a second, so the synthetic sample and its
workflow are built once per session and shared by every test that only reads them. Tests that
count cache hits build their own Workflow (see ``fresh_workflow``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferrogym.workflows.synthetic import SyntheticParams, SyntheticSample, generate
from ferrogym.workflows.walls import Segmentation
from ferrogym.workflows.workflow import Workflow

#: The repository root (tests are in <repo>/tests).
REPOSITORY = Path(__file__).resolve().parents[1]
#: ../shared/data next to the repository (tests are in <repo>/tests).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: The session sample: two crossing stripe families (all four polar variants, real walls),
#: dose 100, no mis-tilt, 256 x 256 px (about 10 x 10 unit cells of 24.75 px).
SESSION_PARAMS = SyntheticParams(
    shape=(256, 256), dose=100.0, domains="two_families", mistilt_offset_px=(0.0, 0.0)
)
SESSION_SEED = 0


def grid_segmentation(grid: np.ndarray, spacing: float) -> Segmentation:
    """Segmentation of a 2-D label grid laid out on a square lattice of ``spacing`` (x = column)."""
    rows, cols = grid.shape
    xy = spacing * np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), -1).reshape(-1, 2).astype(float)
    return Segmentation(xy, grid.ravel(), spacing)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real test data; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} not available")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data_file(shared_data):
    """``shared_data_file(name) -> Path``; skips the test when that file is absent."""

    def get(name: str) -> Path:
        path = shared_data / name
        if not path.is_file():
            pytest.skip(f"real test data file {path} not available")
        return path

    return get


@pytest.fixture(scope="session")
def two_families_sample() -> SyntheticSample:
    """Synthetic two-family image with ground truth (read only: do not modify)."""
    return generate(SESSION_PARAMS, seed=SESSION_SEED)


@pytest.fixture(scope="session")
def two_families_workflow(two_families_sample) -> Workflow:
    """Workflow on the session sample with its lattice already measured (shared, read only)."""
    workflow = Workflow.from_sample(two_families_sample)
    _ = workflow.lattice
    return workflow


@pytest.fixture
def fresh_workflow(two_families_sample) -> Workflow:
    """A new Workflow on the session sample (own caches) for tests that count cache use."""
    return Workflow.from_sample(two_families_sample)


@pytest.fixture(scope="session")
def two_families_lattice(two_families_workflow):
    """The AtomLattice measured on the session sample."""
    return two_families_workflow.lattice


@pytest.fixture(scope="session")
def perovskite():
    """The :func:`perovskite_positions` builder, for tests that need ideal positions."""
    return perovskite_positions


def perovskite_positions(
    n_cells: int = 8,
    a: float = 20.0,
    origin=(10.0, 10.0),
    rotation_deg: float = 0.0,
    displacement=(0.0, 0.0),
):
    """Ideal [001] perovskite columns: (xy, sublattice) with B at cell centre + displacement.

    A sites on an (n_cells + 1)^2 square grid, B sites at the n_cells^2 cell centres; the
    lattice is rotated by ``rotation_deg`` about the first A site. Returns positions in (x, y).
    """
    t = np.deg2rad(rotation_deg)
    axes = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])  # rows: a1, a2
    i, j = np.meshgrid(np.arange(n_cells + 1), np.arange(n_cells + 1))
    a_ij = np.column_stack([i.ravel(), j.ravel()]).astype(float)
    b_ij = a_ij[(a_ij[:, 0] < n_cells) & (a_ij[:, 1] < n_cells)] + 0.5
    a_xy = np.asarray(origin) + a * a_ij @ axes
    b_xy = np.asarray(origin) + a * b_ij @ axes + np.asarray(displacement, float)
    xy = np.vstack([a_xy, b_xy])
    sublattice = np.array(["A"] * len(a_xy) + ["B"] * len(b_xy))
    return xy, sublattice


@pytest.fixture(scope="session")
def cageless_positions():
    """(xy, sublattice) with A and B sites but no valid B cage: each B a quarter cell off an A."""
    xy, _ = perovskite_positions(n_cells=7, a=20.0)
    a_xy = xy[:64]  # the 8 x 8 A grid
    b_xy = a_xy[(a_xy[:, 0] < a_xy[:, 0].max()) & (a_xy[:, 1] < a_xy[:, 1].max())] + [5.0, 5.0]
    return np.vstack([a_xy, b_xy]), np.array(["A"] * 64 + ["B"] * len(b_xy))
