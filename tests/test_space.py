"""Tests for ferrogym.workflows.space: the one search-space schema and its operations."""

from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.space import SEARCH_SPACE, Param, SearchSpace

S = SEARCH_SPACE


def index_vectors(space: SearchSpace):
    """Hypothesis strategy: one valid grid index per parameter."""
    return st.tuples(*(st.integers(0, n - 1) for n in space.grid_sizes))


def is_grid_value(param: Param, value) -> bool:
    return value in param.grid


# ---------------------------------------------------------------------------------------------
# Param


def test_param_rejects_unknown_kind():
    with pytest.raises(ValueError, match="Param p: unknown kind 'string'"):
        Param("p", "string", ("a",), "a", "help")


def test_param_rejects_default_outside_grid():
    with pytest.raises(ValueError, match="Param p: default 5 is not in its grid"):
        Param("p", "int", (1, 2, 3), 5, "help")


def test_numeric_param_range_defaults_to_grid_ends_and_can_be_widened():
    p = Param("p", "float", (0.5, 1.0, 2.0), 1.0, "help")
    assert (p.low, p.high) == (0.5, 2.0)
    q = Param("q", "float", (0.5, 1.0, 2.0), 1.0, "help", low=0.1, high=3.0)
    assert (q.low, q.high) == (0.1, 3.0)
    assert q.coerce(2.9) == 2.9
    with pytest.raises(InputError, match=r"q=3.5 is outside \[0.1, 3.0\]"):
        q.coerce(3.5)


def test_categorical_param_has_no_range():
    p = Param("c", "categorical", ("x", "y"), "x", "help")
    assert p.low is None and p.high is None


def test_is_active_requires_every_condition():
    p = Param("p", "int", (1, 2), 1, "help", active_when={"a": ("x",), "b": ("u", "v")})
    assert p.is_active({"a": "x", "b": "v"})
    assert not p.is_active({"a": "y", "b": "v"})
    assert not p.is_active({"a": "x", "b": "w"})
    assert not p.is_active({"a": "x"})  # a missing condition parameter does not hold
    assert Param("q", "int", (1,), 1, "help").is_active({})


# ---------------------------------------------------------------------------------------------
# The schema itself


def test_search_space_names_and_grid_sizes_match_params():
    assert S.names == tuple(p.name for p in S.params)
    assert len(set(S.names)) == len(S.names)
    assert S.grid_sizes == tuple(len(p.grid) for p in S.params)
    for name in S.names:
        assert S[name].name == name
    with pytest.raises(KeyError):
        S["no_such_parameter"]


def test_every_param_is_well_formed():
    for p in S.params:
        assert p.help, p.name
        assert len(set(p.grid)) == len(p.grid), f"{p.name} has duplicate grid values"
        assert p.default in p.grid
        if p.kind != "categorical":
            assert list(p.grid) == sorted(p.grid), f"{p.name} grid is not ordered"
            assert p.low <= p.grid[0] and p.grid[-1] <= p.high
        for other, allowed in p.active_when.items():
            assert other in S.names, f"{p.name} depends on unknown {other}"
            assert set(allowed) <= set(S[other].grid), f"{p.name}: {allowed} not in {other}'s grid"


def test_default_is_canonical():
    default = S.default()
    assert list(default) == list(S.names)
    assert S.canonical(default) == default


def test_documented_activity_conditions():
    """Window sizes only for patch descriptors, PCA size only with PCA, covariance only for mixtures."""
    assert not S["window_x"].is_active({**S.default(), "descriptor": "displacement"})
    assert S["window_x"].is_active({**S.default(), "descriptor": "patch+displacement"})
    assert not S["n_components"].is_active({**S.default(), "reduction": "none"})
    assert not S["reduction"].is_active({**S.default(), "descriptor": "patch+displacement"})
    assert S["reduction"].is_active({**S.default(), "descriptor": "lattice"})
    assert not S["covariance"].is_active({**S.default(), "clustering": "kmeans"})
    assert S["covariance"].is_active({**S.default(), "clustering": "bgmm"})


# ---------------------------------------------------------------------------------------------
# canonical()


def test_canonical_fills_defaults():
    assert S.canonical({}) == S.default()
    config = S.canonical({"n_clusters": 6})
    assert config == {**S.default(), "n_clusters": 6}


def test_canonical_keeps_active_values():
    config = S.canonical({"descriptor": "patch", "window_x": 2.0, "window_y": 0.5, "patch_sites": "A"})
    assert (config["window_x"], config["window_y"], config["patch_sites"]) == (2.0, 0.5, "A")


@pytest.mark.parametrize(
    "given_config, reset",
    [
        ({"descriptor": "displacement", "window_x": 2.0, "window_y": 0.5, "patch_sites": "A"}, ("window_x", "window_y", "patch_sites")),
        ({"descriptor": "lattice", "window_x": 2.5}, ("window_x",)),
        ({"descriptor": "patch+displacement", "patch_sites": "all"}, ("patch_sites",)),
        ({"descriptor": "displacement", "reduction": "none", "n_components": 12}, ("n_components",)),
        # patches are always reduced, and the PCA size then matters: conditions read canonical values
        ({"descriptor": "patch", "reduction": "none", "n_components": 12}, ("reduction",)),
        ({"clustering": "kmeans", "covariance": "diag"}, ("covariance",)),
    ],
)
def test_canonical_resets_inactive_params(given_config, reset):
    config = S.canonical(given_config)
    for name in reset:
        assert config[name] == S[name].default, name
    for name, value in given_config.items():
        if name not in reset:
            assert config[name] == value


def test_a_condition_on_a_later_parameter_is_refused():
    with pytest.raises(ValueError, match="must come before it"):
        SearchSpace((Param("a", "int", (1, 2), 1, "a", active_when={"b": ("x",)}),
                     Param("b", "categorical", ("x", "y"), "x", "b")))


def test_canonical_makes_equivalent_configs_equal():
    a = S.canonical({"descriptor": "displacement", "window_x": 2.0})
    b = S.canonical({"descriptor": "displacement", "window_x": 0.5, "window_y": 2.5})
    assert a == b


def test_canonical_does_not_modify_its_input():
    given_config = {"descriptor": "displacement", "window_x": 2.0}
    S.canonical(given_config)
    assert given_config == {"descriptor": "displacement", "window_x": 2.0}


def test_canonical_returns_parameter_types():
    config = S.canonical({"n_clusters": 5.0, "n_components": np.int64(8), "window_x": 1})
    assert config["n_clusters"] == 5 and type(config["n_clusters"]) is int
    assert config["n_components"] == 8 and type(config["n_components"]) is int
    assert config["window_x"] == 1.0 and type(config["window_x"]) is float


def test_canonical_accepts_off_grid_numbers_inside_the_range():
    """A Bayesian optimiser samples the continuous range, not only the grid."""
    config = S.canonical({"window_x": 0.6, "n_components": 5})
    assert config["window_x"] == 0.6
    assert config["n_components"] == 5


def test_canonical_rejects_unknown_names():
    with pytest.raises(InputError, match=r"unknown parameter\(s\) \['bogus', 'windowx'\]; the search space has"):
        S.canonical({"bogus": 1, "windowx": 1.0})


@pytest.mark.parametrize(
    "config, message",
    [
        ({"descriptor": "pixels"}, r"descriptor='pixels' is not one of \['patch', 'displacement'"),
        ({"covariance": "FULL"}, r"covariance='FULL' is not one of"),
        ({"window_x": 3.0}, r"window_x=3.0 is outside \[0.5, 2.5\] a"),
        ({"window_y": 0.1}, r"window_y=0.1 is outside \[0.5, 2.5\] a"),
        ({"n_clusters": 1}, r"n_clusters=1 is outside \[2, 8\]"),
        ({"n_clusters": 9}, r"n_clusters=9 is outside \[2, 8\]"),
        ({"n_clusters": 4.5}, r"n_clusters=4.5 must be a whole number"),
        ({"n_components": "many"}, r"n_components='many' is not a number"),
        ({"window_x": None}, r"window_x=None is not a number"),
        ({"window_x": [1.0]}, r"window_x=\[1.0\] is not a number"),
        ({"n_clusters": float("nan")}, r"n_clusters=nan is outside"),
    ],
)
def test_canonical_rejects_bad_values_naming_the_parameter(config, message):
    with pytest.raises(InputError, match=message):
        S.canonical(config)


def test_inactive_params_are_still_validated():
    """A value is checked even when its parameter is inactive (a typo is a typo)."""
    with pytest.raises(InputError, match="window_x=9"):
        S.canonical({"descriptor": "displacement", "window_x": 9})


# ---------------------------------------------------------------------------------------------
# grid()


def _small_space() -> SearchSpace:
    return SearchSpace(
        (
            Param("mode", "categorical", ("a", "b"), "a", "mode"),
            Param("x", "float", (1.0, 2.0), 1.0, "x", active_when={"mode": ("a",)}),
            Param("k", "int", (1, 2), 2, "k"),
        )
    )


def test_grid_of_small_space_known_answer():
    assert _small_space().grid() == [
        {"mode": "a", "x": 1.0, "k": 1},
        {"mode": "a", "x": 1.0, "k": 2},
        {"mode": "a", "x": 2.0, "k": 1},
        {"mode": "a", "x": 2.0, "k": 2},
        {"mode": "b", "x": 1.0, "k": 1},
        {"mode": "b", "x": 1.0, "k": 2},
    ]


def _expected_grid_size(space: SearchSpace) -> int:
    """Distinct canonical configurations, counted over the controlling parameters only."""
    controlling = sorted({name for p in space.params for name in p.active_when})
    others = [p for p in space.params if p.name not in controlling]
    total = 0
    for values in product(*(space[name].grid for name in controlling)):
        config = dict(zip(controlling, values))
        if any(not space[name].is_active(config) and config[name] != space[name].default for name in controlling):
            continue  # a controlling parameter that is itself inactive counts at its default only
        n = 1
        for p in others:
            n *= len(p.grid) if p.is_active(config) else 1
        total += n
    return total


@pytest.fixture(scope="module")
def full_grid():
    return S.grid()


@pytest.mark.slow
def test_full_grid_has_no_duplicates_and_every_entry_is_canonical(full_grid):
    keys = [tuple(c.values()) for c in full_grid]
    assert len(set(keys)) == len(keys)
    assert len(full_grid) == _expected_grid_size(S)
    for config in full_grid:
        assert list(config) == list(S.names)
        assert S.canonical(config) == config


@pytest.mark.slow
def test_full_grid_covers_every_grid_value(full_grid):
    for p in S.params:
        seen = {c[p.name] for c in full_grid}
        assert seen == set(p.grid), p.name


# ---------------------------------------------------------------------------------------------
# sample()


def test_sample_is_deterministic_per_seed():
    a = [S.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [S.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    rng1, rng2 = np.random.default_rng(11), np.random.default_rng(11)
    assert [S.sample(rng1) for _ in range(20)] == [S.sample(rng2) for _ in range(20)]


def test_sample_varies_and_reaches_every_descriptor():
    rng = np.random.default_rng(0)
    samples = [S.sample(rng) for _ in range(200)]
    assert len({tuple(s.values()) for s in samples}) > 150
    assert {s["descriptor"] for s in samples} == set(S["descriptor"].grid)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_sample_is_canonical_and_on_the_grid(seed):
    config = S.sample(np.random.default_rng(seed))
    assert S.canonical(config) == config
    for p in S.params:
        assert is_grid_value(p, config[p.name]), p.name


# ---------------------------------------------------------------------------------------------
# from_indices / to_indices


def test_from_indices_known_answer():
    config = S.from_indices([0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert config == {
        "descriptor": "patch",
        "patch_sites": "all",
        "window_x": 0.5,
        "window_y": 0.5,
        "reduction": "pca",  # image patches are always reduced
        "n_components": 2,
        "clustering": "gmm",
        "covariance": "full",
        "n_clusters": 2,
    }


def test_from_indices_accepts_any_array_shape_with_the_right_size():
    row = np.array([[1, 0, 2, 3, 1, 4, 1, 0, 6]])
    assert S.from_indices(row) == S.from_indices(row.ravel().tolist())


@pytest.mark.parametrize("indices", [[0] * 8, [0] * 10, []])
def test_from_indices_rejects_wrong_length(indices):
    with pytest.raises(InputError, match=r"expected 9 indices, got shape"):
        S.from_indices(indices)


@pytest.mark.parametrize("bad", [-1, 7])
def test_from_indices_rejects_out_of_range_indices(bad):
    indices = [0] * len(S.params)
    indices[S.names.index("window_x")] = bad  # window_x has 7 grid values
    with pytest.raises(InputError, match="window_x"):
        S.from_indices(indices)


@settings(max_examples=150, deadline=None)
@given(index_vectors(S))
def test_index_round_trip(indices):
    config = S.from_indices(indices)
    assert S.canonical(config) == config
    back = S.to_indices(config)
    assert back.dtype == np.int64 and back.shape == (len(S.params),)
    assert S.from_indices(back) == config
    for p, given_index, returned in zip(S.params, indices, back):
        if p.is_active(config):
            assert returned == given_index, p.name
        else:
            assert p.grid[returned] == p.default, p.name


def test_index_round_trip_small_space_every_entry():
    space = _small_space()
    for config in space.grid():
        assert space.from_indices(space.to_indices(config)) == config


def test_to_indices_of_off_grid_value_is_nearest_grid_value():
    indices = S.to_indices({"window_x": 0.6, "window_y": 2.3})
    assert S["window_x"].grid[indices[S.names.index("window_x")]] == 0.5
    assert S["window_y"].grid[indices[S.names.index("window_y")]] == 2.5


def test_to_indices_validates_its_input():
    with pytest.raises(InputError, match="unknown parameter"):
        S.to_indices({"nope": 1})


# ---------------------------------------------------------------------------------------------
# Restriction to what an input can describe


def test_restricted_narrows_a_categorical_parameter_keeping_grid_order():
    narrowed = S.restricted({"descriptor": ("lattice", "displacement")})
    assert narrowed["descriptor"].grid == ("displacement", "lattice")
    assert narrowed["descriptor"].default == "displacement"  # "patch" is gone: the first kept
    assert narrowed.name == S.name and [p.name for p in narrowed.params] == list(S.names)
    assert {c["descriptor"] for c in narrowed.grid()} == {"displacement", "lattice"}


def test_restricted_configurations_are_canonical_in_the_whole_space():
    narrowed = S.restricted({"descriptor": ("lattice",)})
    rng = np.random.default_rng(0)
    for _ in range(50):
        config = narrowed.sample(rng)
        assert config["descriptor"] == "lattice"
        assert S.canonical(config) == config


def test_restricted_keeps_the_default_and_itself_where_nothing_is_narrowed():
    assert S.restricted({"descriptor": S["descriptor"].grid}) is S
    assert S.restricted({"descriptor": ("lattice", "patch")})["descriptor"].default == "patch"


def test_restricted_keeps_only_coarse_levels_that_are_left():
    space = SearchSpace((Param("kind", "categorical", ("a", "b", "c"), "a", "kind"),), coarse={"kind": ("a", "b")})
    assert space.restricted({"kind": ("b", "c")}).coarse == {"kind": ("b",)}
    assert space.restricted({"kind": ("c",)}).coarse == {}


def test_restricted_refuses_an_empty_choice_and_conditional_or_numeric_parameters():
    with pytest.raises(InputError, match=r"none of descriptor=\['patch', 'displacement', 'lattice', 'patch\+displacement'\]"):
        S.restricted({"descriptor": ("vae",)})
    with pytest.raises(ValueError, match="always active can be narrowed, not patch_sites"):
        S.restricted({"patch_sites": ("all",)})  # inactive for most descriptors: its default must stay
    with pytest.raises(ValueError, match="not n_clusters"):
        S.restricted({"n_clusters": (2,)})
