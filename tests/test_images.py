"""Tests for image SPECs (ferrogym.workflows.images): choices per image and image families."""

from __future__ import annotations

from collections import Counter

import pytest

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import parse_images
from ferrogym.workflows.synthetic import FAMILIES


def test_family_any_draws_every_family_and_the_same_seed_draws_the_same_image():
    images = parse_images("synthetic:0-139,family=any")
    families = Counter(images.params(images.seed(i)).family for i in range(len(images)))
    assert set(families) == set(FAMILIES) and min(families.values()) >= 8  # 20 expected per family
    again = parse_images("synthetic:0-139,family=any")
    assert all(images.params(s) == again.params(s) for s in (0, 57, 139))


def test_a_phase_boundary_is_a_film_on_a_substrate():
    images = parse_images("synthetic:0-9,family=phase_boundary")
    for seed in range(10):
        params = images.params(seed)
        assert params.family == "phase_boundary" and 0.2 <= params.substrate_fraction <= 0.5


def test_choices_pick_one_value_per_image_and_leave_other_fields_as_drawn():
    images = parse_images("synthetic:0-39,shape=128x128|256x256")
    shapes = Counter(images.params(s).shape for s in range(40))
    assert set(shapes) == {(128, 128), (256, 256)}
    plain = parse_images("synthetic:0-39")
    assert images.params(3).dose == plain.params(3).dose  # the base draw is unchanged


@pytest.mark.parametrize(
    "spec, message",
    [
        ("synthetic:0-3,family=foo", "synthetic family 'foo'"),
        ("synthetic:0-3,shape=256x256|10x10", "spans fewer than 3 unit cells"),
        ("synthetic:0-3,dose=100,dose=50|80", "given more than once"),
    ],
)
def test_bad_choices_are_refused_with_the_reason(spec, message):
    with pytest.raises(InputError, match=message):
        parse_images(spec)
