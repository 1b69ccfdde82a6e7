"""Tests for ferrogym.workflows.rewards: are the walls of a segmentation continuous and straight?"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ferrogym.workflows import rewards as rewards_module
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.rewards import (
    LONG_WALL,
    REWARDS,
    RewardResult,
    as_reward_result,
    combined_reward,
    continuity_reward,
    get_reward,
    island_fraction,
    order_reward,
    register_reward,
    straightness_reward,
    wall_components,
)
from ferrogym.workflows.order import scale_order
from ferrogym.workflows.walls import Segmentation

from conftest import grid_segmentation

A = 10.0
N = 20
XY = A * np.stack(np.meshgrid(np.arange(N), np.arange(N)), -1).reshape(-1, 2).astype(float)
X, Y = XY[:, 0] / A, XY[:, 1] / A
M = N * N

BUILT_IN = ("continuity", "straightness", "combined")
DOCUMENTED_COMPONENTS = {
    "n_labels",
    "islands",
    "continuity",
    "straightness",
    "n_walls",
    "n_networks",
    "mean_wall_length",
    "wall_density",
}


def seg(labels, xy=XY, a=A) -> Segmentation:
    return Segmentation(xy, np.asarray(labels, dtype=int), a)


def reward(labels, name="combined") -> RewardResult:
    return REWARDS[name](seg(labels))


def at(x, y):
    return (X == x) & (Y == y)


def straight_wall():
    return (X > 9.5).astype(int)


def with_specks(labels, sites):
    labels = labels.copy()
    for x, y in sites:
        labels[at(x, y)] = 1 - labels[at(x, y)]
    return labels


# specks well away from the wall at x = 9.5, from the image edge and from each other
SPECKS = [(3, 3), (3, 9), (4, 15), (15, 4), (16, 10), (14, 16)]


# ---------------------------------------------------------------------------------------------
# Registry and lookup


def test_built_in_rewards_are_registered():
    assert set(BUILT_IN) <= set(REWARDS)
    assert REWARDS["combined"] is combined_reward
    assert REWARDS["continuity"] is continuity_reward
    assert REWARDS["straightness"] is straightness_reward


@pytest.fixture
def clean_registry():
    before = dict(REWARDS)
    yield
    REWARDS.clear()
    REWARDS.update(before)


def test_register_reward_makes_a_name_usable(clean_registry):
    def half(segmentation):
        return RewardResult(0.5, {})

    assert register_reward("test_half", half) is half
    assert get_reward("test_half") is half
    assert get_reward("test_half")(seg(straight_wall())).value == 0.5


def test_register_reward_as_decorator(clean_registry):
    @register_reward("test_decorated")
    def decorated(segmentation):
        return RewardResult(0.25, {})

    assert callable(decorated)
    assert REWARDS["test_decorated"] is decorated
    assert get_reward("test_decorated") is decorated


def test_get_reward_accepts_callable_name_and_module_path():
    def custom(segmentation):
        return RewardResult(0.0, {})

    assert get_reward(custom) is custom
    assert get_reward("combined") is combined_reward
    assert get_reward("ferrogym.workflows.rewards:combined_reward") is combined_reward
    assert get_reward("ferrogym.workflows.rewards:island_fraction") is island_fraction


def test_unknown_reward_name_lists_the_choices():
    with pytest.raises(InputError, match=r"unknown reward 'combind'; use one of \['combined', 'continuity', 'order', 'straightness'.*'module:function'"):
        get_reward("combind")


@pytest.mark.parametrize(
    "path, message",
    [
        ("no_such_module_xyz:f", r"reward 'no_such_module_xyz:f' could not be imported: No module named 'no_such_module_xyz'"),
        ("ferrogym.workflows.rewards:no_such_reward", r"could not be imported: module 'ferrogym.workflows.rewards' has no attribute 'no_such_reward'"),
        ("ferrogym.workflows.rewards:", r"could not be imported"),
        ("ferrogym.workflows.rewards:LONG_WALL", r"reward 'ferrogym.workflows.rewards:LONG_WALL' is not callable"),
    ],
)
def test_bad_module_paths_raise_input_error(path, message):
    with pytest.raises(InputError, match=message):
        get_reward(path)


@pytest.mark.parametrize("path", [":combined_reward", "..rewards:combined_reward"])
def test_malformed_module_paths_raise_input_error(path):
    with pytest.raises(InputError, match="could not be imported"):
        get_reward(path)


def test_get_reward_rejects_non_callable_non_string():
    with pytest.raises(InputError, match="unknown reward None"):
        get_reward(None)


# ---------------------------------------------------------------------------------------------
# Degenerate segmentations


@pytest.mark.parametrize("name", BUILT_IN)
def test_one_label_scores_zero(name):
    result = reward(np.zeros(M, int), name)
    assert result.value == 0.0
    assert result.components["n_labels"] == 1
    assert result.components["n_walls"] == 0


@pytest.mark.parametrize("name", BUILT_IN)
def test_all_unassigned_scores_zero(name):
    result = reward(np.full(M, -1), name)
    assert result.value == 0.0
    assert result.components["n_labels"] == 0
    assert result.components["wall_density"] == 0.0


@pytest.mark.parametrize("name", BUILT_IN)
def test_two_labels_without_walls_score_zero(name):
    """Two domains separated by unassigned sites: no wall, nothing to judge."""
    labels = np.where(X < 9.5, 0, np.where(X < 10.5, -1, 1))
    result = reward(labels, name)
    assert result.components["n_labels"] == 2
    assert result.value == 0.0


def test_components_contain_the_documented_keys():
    for name in BUILT_IN:
        components = reward(straight_wall(), name).components
        assert DOCUMENTED_COMPONENTS <= set(components)
        assert all(isinstance(v, float) for v in components.values())
    assert set(wall_components(seg(straight_wall()))) >= DOCUMENTED_COMPONENTS


# ---------------------------------------------------------------------------------------------
# Clean walls score high


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(straight_wall(), id="vertical"),
        pytest.param((Y > 6.5).astype(int), id="horizontal"),
        pytest.param((X > Y).astype(int), id="diagonal"),
        pytest.param(2 * (Y > 9.5) + (X > 9.5), id="crossing"),
        pytest.param(((X >= 6) & (X < 13)).astype(int), id="wide-stripe"),
    ],
)
def test_clean_walls_through_the_field_score_close_to_one(labels):
    result = reward(labels)
    assert result.value >= 0.9
    assert result.components["islands"] == 0.0
    assert result.components["continuity"] == pytest.approx(1.0)


def test_straight_wall_known_components():
    c = reward(straight_wall()).components
    assert c["n_labels"] == 2
    assert c["continuity"] == 1.0
    assert c["straightness"] == pytest.approx(1.0)
    assert c["n_walls"] == 1 and c["n_networks"] == 1
    assert c["mean_wall_length"] == pytest.approx(N)
    assert c["wall_density"] == pytest.approx(N / M)
    for name in BUILT_IN:
        assert reward(straight_wall(), name).value == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Bad segmentations score low


@pytest.mark.parametrize("n_classes", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_salt_and_pepper_scores_low(n_classes, seed):
    labels = np.random.default_rng(seed).integers(0, n_classes, M)
    result = reward(labels)
    assert result.value < 0.1
    assert result.components["islands"] > 0.3


@pytest.mark.parametrize("amplitude", [1, 2, 3])
def test_zig_zag_wall_is_less_straight_than_a_straight_one(amplitude):
    triangle = amplitude * np.abs((Y / amplitude) % 2 - 1)  # period 2 amplitude, peak-to-peak amplitude
    zigzag = (X > 8 + triangle).astype(int)
    straight = reward(straight_wall(), "straightness")
    wavy = reward(zigzag, "straightness")
    assert wavy.components["n_walls"] == 1
    assert wavy.components["continuity"] == 1.0  # still one unbroken wall
    assert wavy.components["straightness"] < straight.components["straightness"] - 0.2
    assert wavy.value < straight.value
    assert reward(zigzag).value < reward(straight_wall()).value


def test_larger_zig_zag_is_less_straight():
    values = []
    for amplitude in (1, 2, 3, 4):
        triangle = amplitude * np.abs((Y / amplitude) % 2 - 1)
        values.append(reward((X > 8 + triangle).astype(int), "straightness").value)
    assert values == sorted(values, reverse=True)


def test_broken_wall_is_less_continuous_than_an_unbroken_one():
    """Dominoes of label 1 along x = 10, away from the edges: walls that stop inside the crystal."""
    fragments = np.zeros(M, int)
    for y0 in (3, 7, 11, 15):
        fragments[at(10, y0) | at(10, y0 + 1)] = 1
    broken = reward(fragments, "continuity")
    unbroken = reward(straight_wall(), "continuity")
    assert broken.components["n_networks"] == 4
    assert broken.components["continuity"] == 0.0  # each domino's wall is 3 a long, < LONG_WALL
    assert unbroken.components["continuity"] == 1.0
    assert broken.value < unbroken.value
    assert reward(fragments).value < reward(straight_wall()).value


def test_island_outline_is_not_continuous_even_at_the_border():
    """A 3 a network around a two-site speck is no wall, inside or where it leaves the region."""
    inside = np.zeros(M, int)
    inside[at(10, 9) | at(10, 10)] = 1
    edge = np.zeros(M, int)
    edge[at(0, 9) | at(0, 10)] = 1
    assert LONG_WALL / 2 <= 3 < LONG_WALL
    assert wall_components(seg(inside))["continuity"] == 0.0
    assert wall_components(seg(edge))["continuity"] == 0.0


def test_long_closed_wall_inside_is_continuous():
    block = ((X >= 8) & (X < 12) & (Y >= 8) & (Y < 12)).astype(int)  # ring of walls, 5 a across
    c = wall_components(seg(block))
    assert c["n_networks"] == 1
    assert c["continuity"] == 1.0
    assert c["islands"] == 0.0  # 4 interior sites >= max(3, 0.01 * 400)


def test_continuity_known_answer_with_specks():
    labels = with_specks(straight_wall(), SPECKS[:2])
    c = wall_components(seg(labels))
    # 20 points on the long wall, 4 on each speck's closed wall (2 a long, inside)
    assert c["continuity"] == pytest.approx(20 / 28)
    assert c["n_networks"] == 3
    assert c["islands"] == pytest.approx(2 / M)


# ---------------------------------------------------------------------------------------------
# Islands


def test_specks_raise_islands_and_lower_the_reward():
    clean = reward(straight_wall())
    previous = clean.value
    for k in range(1, len(SPECKS) + 1):
        noisy = reward(with_specks(straight_wall(), SPECKS[:k]))
        assert noisy.components["islands"] == pytest.approx(k / M)
        assert noisy.value < previous
        previous = noisy.value
    assert island_fraction(seg(straight_wall())) == 0.0


@pytest.mark.parametrize("width, expected", [(1, N / M), (2, 2 * N / M), (3, 0.0)])
def test_one_and_two_cell_thin_stripes_are_islands(width, expected):
    labels = ((X >= 9) & (X < 9 + width)).astype(int)
    assert island_fraction(seg(labels)) == pytest.approx(expected)
    if width < 3:
        assert reward(labels).value < reward(((X >= 9) & (X < 12)).astype(int)).value


@pytest.mark.parametrize(
    "n, height, width, is_island",
    [
        (20, 3, 5, True),  # 3 interior sites < max(3, 4)
        (20, 3, 6, False),  # 4 interior sites
        (10, 3, 5, False),  # 3 interior sites, threshold max(3, 1) = 3
        (10, 3, 4, True),  # 2 interior sites
    ],
)
def test_island_threshold(n, height, width, is_island):
    xy = A * np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2).astype(float)
    x, y = xy[:, 0] / A, xy[:, 1] / A
    labels = ((x >= 3) & (x < 3 + width) & (y >= 3) & (y < 3 + height)).astype(int)
    expected = height * width / (n * n) if is_island else 0.0
    assert island_fraction(Segmentation(xy, labels, A)) == pytest.approx(expected)


def test_unassigned_sites_are_not_counted_as_islands():
    labels = straight_wall()
    labels[at(3, 3) | at(15, 15)] = -1
    assert island_fraction(seg(labels)) == 0.0


# ---------------------------------------------------------------------------------------------
# Invariants on random labels


small_label_grids = arrays(np.int64, st.tuples(st.integers(3, 10), st.integers(3, 10)), elements=st.integers(-1, 3))


@settings(max_examples=60, deadline=None)
@given(small_label_grids)
def test_rewards_are_in_unit_interval_and_follow_the_documented_formulas(grid):
    s = grid_segmentation(grid, A)
    c = wall_components(s)
    for key in ("islands", "continuity", "straightness"):
        assert 0.0 <= c[key] <= 1.0, key
    has_walls = c["n_labels"] >= 2 and c["n_walls"] > 0
    expected = {
        "continuity": c["continuity"] * (1 - c["islands"]),
        "straightness": c["straightness"] * (1 - c["islands"]),
        "combined": c["continuity"] * c["straightness"] * (1 - c["islands"]),
    }
    for name in BUILT_IN:
        result = REWARDS[name](s)
        assert isinstance(result, RewardResult)
        assert 0.0 <= result.value <= 1.0
        assert result.value == pytest.approx(expected[name] if has_walls else 0.0)
        assert result.components == c
    # the components against their documented definitions, from the walls themselves
    total = len(s.wall_points)
    if total:
        long_enough = [
            w.length_px / A >= LONG_WALL or (w.touches_border and w.length_px / A >= LONG_WALL / 2)
            for w in s.networks
        ]
        in_island = rewards_module.island_sites(s)
        continuous = sum(
            long_enough[s.network_index[i]] and not in_island[s.wall_bonds[i]].any() for i in range(total)
        )
        assert c["continuity"] == pytest.approx(continuous / total)
        straight = sum(
            len(w.points) * np.exp(-w.residual_px / A) * min(1.0, w.length_px / A / (LONG_WALL / 2))
            for w in s.segments
        )
        assert c["straightness"] == pytest.approx(straight / total)
        assert c["n_walls"] == len(s.segments) and c["n_networks"] == len(s.networks)


def test_reward_does_not_depend_on_label_values():
    rng = np.random.default_rng(5)
    base = 2 * (Y > 9.5) + (X > 9.5)
    base = with_specks(base, [(3, 3)])
    permuted = np.array([7, 2, 0, 4])[base]
    assert reward(permuted).value == pytest.approx(reward(base).value)
    shuffled_sites = rng.permutation(M)
    s1 = Segmentation(XY[shuffled_sites], base[shuffled_sites], A)
    assert combined_reward(s1).value == pytest.approx(reward(base).value)


def test_reward_is_scale_free():
    """Everything is measured in lattice constants: scaling the lattice changes nothing."""
    labels = with_specks((X > Y).astype(int), [(3, 12)])
    small = combined_reward(Segmentation(XY, labels, A)).value
    large = combined_reward(Segmentation(3.7 * XY, labels, 3.7 * A)).value
    assert small == pytest.approx(large)


def test_module_constants_are_documented_values():
    assert rewards_module.LONG_WALL == 4.0
    assert rewards_module.ISLAND_SHARE == 0.01


# ------------------------------------------------------------------ order-parameter rewards


def ordered(labels, order_values, seed=0, noise=0.1) -> Segmentation:
    """A grid segmentation carrying an order parameter: ``order_values`` plus Gaussian noise."""
    base = seg(labels)
    values = np.asarray(order_values, float).reshape(M, -1)
    values = values + np.random.default_rng(seed).normal(0, noise, values.shape)
    order = scale_order(values, [f"z{k}" for k in range(values.shape[1])], XY, base.bonds, 0.0)
    return Segmentation(XY, base.labels, A, order=order)


def step_order():
    """Two variants meeting at x = 9.5: opposite displacement vectors."""
    return np.where((X > 9.5)[:, None], [[-1.0, 0.0]], [[1.0, 0.0]])


def test_a_step_in_the_order_parameter_is_a_wall():
    result = order_reward(ordered(straight_wall(), step_order()))
    assert result.components["wall_contrast"] == pytest.approx(1.0)
    assert result.components["uniformity"] > 0.95
    assert result.value > 0.95


def test_a_ramp_cut_into_bands_earns_nothing():
    """A smooth gradient (0.2 per cell, twice the noise) split in two: uniform enough, but no step."""
    segmentation = ordered(straight_wall(), 0.2 * X)
    result = order_reward(segmentation)
    assert result.components["uniformity"] > 0.7  # geometry and uniformity alone would accept it
    assert result.components["wall_contrast"] < 0.2
    assert result.value < 0.15
    assert combined_reward(segmentation).value > 0.9  # what the geometric reward says


def test_two_variants_merged_into_one_domain_lose_uniformity():
    """Four stripes of four variants: the 2-label answer (1st+3rd, 2nd+4th) keeps every wall but
    mixes two variants in each domain."""
    stripe = np.minimum(X // 5, 3).astype(int)
    variants = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    truth = order_reward(ordered(stripe, variants[stripe]))
    merged = order_reward(ordered(stripe % 2, variants[stripe]))
    assert truth.components["wall_contrast"] == pytest.approx(1.0)
    assert merged.components["wall_contrast"] == pytest.approx(1.0)
    assert merged.components["uniformity"] < 0.1 < 0.95 < truth.components["uniformity"]
    assert merged.value < 0.1 < 0.95 < truth.value


def test_one_domain_and_walls_in_noise_score_zero():
    noise_only = np.zeros((M, 2))
    assert order_reward(ordered(np.zeros(M, int), noise_only)).value == 0.0
    split = order_reward(ordered(straight_wall(), noise_only))
    assert split.components["wall_contrast"] < 0.2 and split.value < 0.05


def test_a_misplaced_wall_scores_less_than_the_true_one():
    true_wall = order_reward(ordered(straight_wall(), step_order())).value
    shifted = order_reward(ordered((X > 12.5).astype(int), step_order())).value
    assert shifted < 0.5 * true_wall


def test_order_rewards_need_an_order_parameter():
    with pytest.raises(InputError, match="order parameter"):
        order_reward(seg(straight_wall()))


def test_a_custom_reward_may_return_a_plain_number():
    assert as_reward_result(0.25) == RewardResult(0.25, {})
    assert as_reward_result(np.float32(0.5)) == RewardResult(0.5, {})
    result = RewardResult(0.1, {"x": 1.0})
    assert as_reward_result(result) is result
    with pytest.raises(InputError, match="returns a number or a RewardResult"):
        as_reward_result("high", "mine")


def test_an_order_parameter_without_variation_has_no_walls():
    flat = scale_order(np.ones((M, 1)), ["flat"], XY, seg(straight_wall()).bonds, 0.0)
    assert flat.values.shape == (M, 0)
    result = order_reward(Segmentation(XY, straight_wall(), A, order=flat))
    assert result.value == 0.0 and result.components["wall_contrast"] == 0.0


def test_an_exact_step_is_a_full_wall():
    """Noise-free input: neighbours inside a domain are equal, so the step is infinitely clear."""
    base = seg(straight_wall())
    exact = scale_order(step_order(), ["x", "y"], XY, base.bonds, 0.0)
    result = order_reward(Segmentation(XY, straight_wall(), A, order=exact))
    assert result.components["wall_contrast"] == 1.0 and result.value == pytest.approx(1.0)


def test_a_small_true_domain_is_not_an_island_to_the_order_reward():
    """A 3 x 3 domain with its own variant: an island by the geometric rule, a clean step in z."""
    small = ((np.abs(X - 10) <= 1) & (np.abs(Y - 10) <= 1)).astype(int)
    values = np.where(small[:, None] == 1, [[-1.0, 0.0]], [[1.0, 0.0]])
    result = order_reward(ordered(small, values))
    assert result.components["islands"] > 0  # what the geometric rewards hold against it
    assert result.value > 0.9
