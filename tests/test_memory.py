"""Memory handling of full frames (issue 11) that must not change results.

- Column refinement in chunks (``atoms.REFINE_CHUNK``) gives exactly the one-batch result.
"""

from __future__ import annotations

import numpy as np

from ferrogym.workflows import atoms


def test_refinement_in_chunks_equals_one_batch(two_families_sample, monkeypatch):
    image = two_families_sample.image
    spacing = atoms.estimate_column_spacing(image)
    candidates = atoms.detect_columns(image, spacing)
    whole = atoms.refine_columns(image, candidates, spacing)
    monkeypatch.setattr(atoms, "REFINE_CHUNK", 7)  # many chunks, the last one short
    chunked = atoms.refine_columns(image, candidates, spacing)
    assert len(candidates) > 7 * 3
    np.testing.assert_array_equal(chunked.xy, whole.xy)
    np.testing.assert_array_equal(chunked.amplitude, whole.amplitude)
    np.testing.assert_array_equal(chunked.sigma, whole.sigma)
