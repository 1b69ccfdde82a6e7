"""A region of the image to analyse (workflows/region.py): boxes, masks, mask files, and a workflow
that drops the columns outside it."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imsave

from ferrogym.workflows import SyntheticParams, Workflow, generate
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.region import columns_inside, parse_box, region_mask

SHAPE = (256, 256)


def test_a_box_is_x0_y0_x1_y1_in_pixels():
    assert parse_box("10, 20,100,200") == (10.0, 20.0, 100.0, 200.0)
    mask = region_mask((10, 20, 100, 200), SHAPE)
    rows, cols = np.nonzero(mask)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (10, 100, 20, 200)  # x = column, y = row
    with pytest.raises(InputError, match="not x0,y0,x1,y1"):
        parse_box("10,20,100")


def test_masks_from_arrays_and_files(tmp_path):
    mask = np.zeros(SHAPE, dtype=bool)
    mask[:, 100:] = True
    np.save(tmp_path / "mask.npy", mask)
    imsave(tmp_path / "mask.png", mask.astype(float), cmap="gray")  # as painted in an image editor
    for given in (mask, tmp_path / "mask.npy", tmp_path / "mask.png"):
        np.testing.assert_array_equal(region_mask(given, SHAPE), mask)
    with pytest.raises(InputError, match="shape"):
        region_mask(mask[:, :10], SHAPE)
    with pytest.raises(InputError, match="larger region"):
        region_mask((0, 0, 1, 1), SHAPE)
    with pytest.raises(InputError, match="missing or not one of"):
        region_mask(tmp_path / "mask.bmp", SHAPE)


def test_columns_inside_use_x_as_column():
    mask = np.zeros((10, 20), dtype=bool)
    mask[2, 15] = True
    assert columns_inside(np.array([[15.2, 1.8], [2.0, 15.0]]), mask).tolist() == [True, False]


def test_a_workflow_drops_the_columns_outside_its_region():
    sample = generate(SyntheticParams(shape=SHAPE), seed=0)
    box = (0, 0, 255, 127)  # the top half
    inside = Workflow(sample.image, region=box).lattice
    everything = Workflow(sample.image).lattice
    assert inside.xy[:, 1].max() <= 127.5
    top = everything.xy[:, 1] <= 127.5
    assert abs(len(inside.xy) - top.sum()) <= 0.02 * top.sum()
    with pytest.raises(InputError, match="positions without an image"):
        Workflow(positions=sample.truth.xy, region=box)
