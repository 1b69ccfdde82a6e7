"""Memory handling of full frames (issue 11) that must not change results.

- Column refinement in chunks (``atoms.REFINE_CHUNK``) gives exactly the one-batch result.
- Patches blended in chunks, and the patch + displacement descriptor sampled and scaled in its
  own result's columns, give exactly what sampling all at once and scaling copies gave.
- A search keeps every step's outcome but only the best evaluation's labels and segmentation.
"""

from __future__ import annotations

import numpy as np
import pytest

from ferrogym.agents.search import SearchStep, make_strategy, run_search
from ferrogym.workflows import atoms, descriptors
from ferrogym.workflows.periodicity import measure_periodicity
from ferrogym.workflows.workflow import Evaluation


def test_refinement_in_chunks_equals_one_batch(two_families_sample, monkeypatch):
    image = two_families_sample.image
    spacing = measure_periodicity(image).column_spacing
    candidates = atoms.detect_columns(image, spacing)
    whole = atoms.refine_columns(image, candidates, spacing)
    monkeypatch.setattr(atoms, "REFINE_CHUNK", 7)  # many chunks, the last one short
    chunked = atoms.refine_columns(image, candidates, spacing)
    assert len(candidates) > 7 * 3
    np.testing.assert_array_equal(chunked.xy, whole.xy)
    np.testing.assert_array_equal(chunked.amplitude, whole.amplitude)
    np.testing.assert_array_equal(chunked.sigma, whole.sigma)


def test_windows_in_chunks_equal_one_chunk(two_families_sample, two_families_lattice):
    image = two_families_sample.image.astype(descriptors.PATCH_DTYPE)
    xy = two_families_lattice.xy
    xy = xy[descriptors.windows_inside(image.shape, xy, 15, 9)]
    whole = descriptors._unit_step_windows(image, xy, 15, 9, chunk_samples=len(xy) * 15 * 9)
    chunked = descriptors._unit_step_windows(image, xy, 15, 9, chunk_samples=7 * 15 * 9 + 1)  # the last one short
    assert len(xy) > 7 * 3
    np.testing.assert_array_equal(chunked, whole)


def _blocks_scaled_apart(image, lattice, window_x, window_y):
    """The patch + displacement descriptor as it was made before it was sampled in place: each
    block copied out and scaled to unit total variance on its own."""
    patches = descriptors.patch_descriptor(image, lattice, patch_sites="B", window_x=window_x, window_y=window_y)
    shifts = descriptors.displacement_descriptor(image, lattice)
    common, in_patch, in_shift = np.intersect1d(patches.sites, shifts.sites, return_indices=True)
    blocks = []
    for block in (patches.values[in_patch], shifts.values[in_shift]):
        block = block - block.mean(axis=0)
        total = np.sqrt(np.sum(block.var(axis=0)))
        blocks.append((block / total).astype(descriptors.PATCH_DTYPE))
    return np.hstack(blocks), common


@pytest.mark.parametrize("window_x, window_y", [(0.5, 0.5), (1.0, 2.5), (2.5, 1.25)])
def test_patch_and_displacement_in_place_equals_blocks_scaled_apart(two_families_sample, two_families_lattice,
                                                                    window_x, window_y):
    image, lattice = two_families_sample.image, two_families_lattice
    features = descriptors.compute_descriptor("patch+displacement", image, lattice, window_x=window_x,
                                              window_y=window_y)
    values, sites = _blocks_scaled_apart(image, lattice, window_x, window_y)
    assert features.values.shape[1] > 64  # more columns than one block of variances
    np.testing.assert_array_equal(features.sites, sites)
    np.testing.assert_array_equal(features.values, values)


def test_search_keeps_every_outcome_and_the_best_evaluation(fresh_workflow):
    workflow, budget = fresh_workflow, 6
    evaluations = []
    search = run_search(make_strategy("random", workflow, budget, 0), workflow, budget,
                        on_step=lambda step: evaluations.append(workflow.evaluate(step.config)))
    assert [step.step for step in search.steps] == list(range(1, budget + 1))
    for step, evaluation in zip(search.steps, evaluations):
        assert isinstance(step, SearchStep) and not hasattr(step, "segmentation")
        assert (step.config, step.config_px, step.reward, step.components, step.metrics, step.reason) == (
            evaluation.config, evaluation.config_px, evaluation.reward, evaluation.components, evaluation.metrics,
            evaluation.reason)
    first_best = max(range(budget), key=lambda i: search.steps[i].reward)
    assert isinstance(search.best, Evaluation)
    assert search.best is evaluations[first_best]
