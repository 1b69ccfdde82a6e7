"""The reward audit on three small synthetic images, with rewards of known agreement."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from ferrogym.agents.audit import CSV_COLUMNS, agreement, audit, summarise_audit, write_audit
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import ArrayImage, parse_images
from ferrogym.workflows.rewards import REWARDS, RewardResult, combined_reward

SPEC = "synthetic:0-2,shape=200x200"
N_CONFIGS = 15


def anti_combined(segmentation):
    """1 - combined: ranks configurations exactly the other way round."""
    return RewardResult(1.0 - combined_reward(segmentation).value)


def constant(segmentation):
    """The same value for every segmentation: no Spearman."""
    return RewardResult(0.5)


@pytest.fixture(scope="module")
def images():
    return parse_images(SPEC)


@pytest.fixture(scope="module")
def rows(images):
    """Built-in rewards plus an anti-reward, a constant one and one named 'module:function'."""
    rewards = dict(REWARDS) | {"anti": anti_combined, "constant": constant, "walls": "reward_plugins:wall_count"}
    return audit(images, N_CONFIGS, rewards)


def test_one_row_per_image_and_reward(rows, images):
    rewards = [*REWARDS, "anti", "constant", "walls"]
    assert [(row["image"], row["reward"]) for row in rows] == [
        (images.name(i), reward) for i in range(len(images)) for reward in rewards
    ]
    for row in rows:
        assert row["family"] == images.params(int(row["image"].split(":")[1])).domains
        assert math.isnan(row["spearman"]) or -1.0 <= row["spearman"] <= 1.0
        assert row["favourite_ari"] <= row["best_ari"]
        assert row["n_configs"] == N_CONFIGS == len(row["values"]) == len(row["ari"])
        assert row["best_ari"] == max(row["ari"])


def test_anti_reward_has_exactly_minus_the_spearman_of_combined(rows):
    by_key = {(row["image"], row["reward"]): row for row in rows}
    combined_rho, anti_rho = [], []
    for image in dict.fromkeys(row["image"] for row in rows):
        combined, anti = by_key[image, "combined"], by_key[image, "anti"]
        assert anti["ari"] == combined["ari"]  # the same segmentations, evaluated once
        assert anti["spearman"] == pytest.approx(-combined["spearman"], abs=1e-12, nan_ok=True)
        combined_rho.append(combined["spearman"])
        anti_rho.append(anti["spearman"])
    assert np.nanmedian(combined_rho) > 0.3  # so the anti-reward is clearly worse
    assert np.nanmedian(anti_rho) == pytest.approx(-np.nanmedian(combined_rho), abs=1e-12)


def test_constant_reward_has_no_spearman_and_picks_the_first_configuration(rows):
    for row in rows:
        if row["reward"] == "constant":
            assert math.isnan(row["spearman"])
            assert row["favourite_ari"] == row["ari"][0]


def test_agreement_on_known_values():
    result = agreement([0.1, 0.9, 0.9, 0.3], [0.2, 0.5, 0.8, 0.4])
    assert result["favourite_ari"] == 0.5  # tie on 0.9: the first
    assert result["best_ari"] == 0.8
    assert result["spearman"] == pytest.approx(0.9486832980505138)
    assert math.isnan(agreement([0.1, 0.2], [0.3, 0.3])["spearman"])


def test_summary_per_family_and_all(rows):
    summary = summarise_audit(rows)
    families = sorted({row["family"] for row in rows})
    rewards = list(dict.fromkeys(row["reward"] for row in rows))
    assert [(s["reward"], s["family"]) for s in summary] == [
        (reward, family) for reward in rewards for family in [*families, "all"]
    ]
    for s in summary:
        group = [r for r in rows if r["reward"] == s["reward"] and s["family"] in ("all", r["family"])]
        rho = np.array([r["spearman"] for r in group])
        assert s["n_images"] == len(group)
        assert s["n_constant"] == np.isnan(rho).sum()
        assert s["n_near_best"] == sum(r["best_ari"] - r["favourite_ari"] <= 0.05 for r in group)
        if s["n_constant"] < s["n_images"]:
            assert s["spearman_median"] == pytest.approx(np.nanmedian(rho))
            assert s["spearman_min"] == pytest.approx(np.nanmin(rho))
            assert s["spearman_lo"] <= s["spearman_iqm"] <= s["spearman_hi"]
    everything = {s["reward"]: s for s in summary if s["family"] == "all"}
    assert everything["constant"]["n_constant"] == 3 and math.isnan(everything["constant"]["spearman_median"])
    assert everything["anti"]["spearman_median"] < everything["combined"]["spearman_median"]


def test_write_audit_files(rows, tmp_path):
    paths = write_audit(rows, summarise_audit(rows), tmp_path / "out")
    assert [p.name for p in paths] == ["audit.csv", "audit_summary.md", "audit.png"]
    with paths[0].open() as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == CSV_COLUMNS
    assert len(table) == len(rows)
    assert "values" not in table[0] and "ari" not in table[0]
    text = paths[1].read_text()
    assert "| Reward | Family |" in text and "| combined | all |" in text and "Spearman" in text
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[2].stat().st_size > 10_000


def test_images_without_truth_are_refused(images):
    array = ArrayImage(images.workflow(0).image)
    with pytest.raises(InputError, match="synthetic"):
        audit(array, 5)


def test_too_few_configurations_are_refused(images):
    with pytest.raises(InputError, match="at least 2"):
        audit(images, 1)


def test_same_seed_same_rows_and_progress_per_image(rows):
    calls = []
    one_image = parse_images("synthetic:0-0,shape=200x200")
    again = audit(one_image, N_CONFIGS, {"combined": "combined"}, progress=lambda: calls.append(1))
    first = next(row for row in rows if row["reward"] == "combined")
    assert again[0].keys() == first.keys()
    assert all(_same(again[0][key], first[key]) for key in first)
    assert calls == [1]
    other_seed = audit(one_image, 5, {"combined": "combined"}, seed=1)
    assert other_seed[0]["ari"] != first["ari"][:5]  # seed 0 draws the same first 5 configurations


def _same(a, b) -> bool:
    """Equal, counting NaN as equal to NaN."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
