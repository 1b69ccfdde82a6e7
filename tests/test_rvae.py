"""The rotation-invariant VAE: shapes, determinism, equivariance of its angle, and the VAE space
through the workflow and the env."""

import gymnasium as gym
import numpy as np
import pytest

import ferrogym.envs  # noqa: F401  (registers the env ids)
from ferrogym.workflows import InputError, Workflow
from ferrogym.workflows.descriptors import DescriptorUnavailable, compute_descriptor, window_pixels
from ferrogym.workflows.rvae import SIDE, VAESettings, fit_latents
from ferrogym.workflows.space import SEARCH_SPACE, SPACES, VAE_SPACE, get_space
from ferrogym.workflows.synthetic import SyntheticParams, generate


def motif(angle: float, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """An L of three Gaussian blobs of different heights (no rotational symmetry), turned
    counter-clockwise on screen (rows down) by ``angle``."""
    yy, xx = np.mgrid[-1 : 1 : SIDE * 1j, -1 : 1 : SIDE * 1j]
    cos, sin = np.cos(angle), np.sin(angle)
    patch = np.zeros_like(xx)
    for x, y, height in ((0.0, 0.0, 1.0), (0.5, 0.0, 0.7), (0.0, -0.5, 0.4)):
        centre_x, centre_y = cos * x + sin * y, -sin * x + cos * y
        patch += height * np.exp(-((xx - centre_x) ** 2 + (yy - centre_y) ** 2) / (2 * 0.15**2))
    return patch + noise * rng.normal(size=patch.shape)


@pytest.fixture(scope="module")
def turned_motifs():
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, 600)
    return angles, np.stack([motif(angle, rng) for angle in angles])


@pytest.mark.parametrize("invariance, angle, shift", [("none", False, False), ("rotation", True, False),
                                                      ("rotation+translation", True, True)])
def test_latent_shapes_follow_the_invariance(invariance, angle, shift):
    patches = np.random.default_rng(1).normal(size=(40, SIDE, SIDE))
    latents = fit_latents(patches, VAESettings(latent_dim=3, invariance=invariance, epochs=2))
    assert latents.content.shape == (40, 3)
    assert (latents.angle is not None) == angle and (latents.shift is not None) == shift
    assert latents.features().shape == (40, 3 + 2 * angle + 2 * shift)
    expected = {"z1", "z2", "z3"} | ({"angle_deg"} if angle else set()) | ({"dx", "dy"} if shift else set())
    assert set(latents.named()) == expected
    assert latents.device == "cpu" and np.isfinite(latents.loss)


def test_training_is_deterministic_under_a_seed():
    patches = np.random.default_rng(2).normal(size=(50, SIDE, SIDE))
    settings = VAESettings(invariance="rotation+translation", epochs=3, seed=7)
    first, second = fit_latents(patches, settings), fit_latents(patches, settings)
    np.testing.assert_array_equal(first.features(), second.features())
    other = fit_latents(patches, VAESettings(invariance="rotation+translation", epochs=3, seed=8))
    assert not np.array_equal(first.features(), other.features())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="invariance"):
        VAESettings(invariance="scale")
    with pytest.raises(ValueError, match="at least 1"):
        VAESettings(epochs=0)


@pytest.mark.slow
def test_angle_follows_a_turn_of_the_patch(turned_motifs):
    """Trained on an asymmetric motif at random turns, the angle recovers the turn (up to one
    constant offset) and a patch turned by 90 degrees counter-clockwise gets 90 degrees more."""
    angles, patches = turned_motifs
    turned = np.stack([np.rot90(p) for p in patches[:60]])  # counter-clockwise as displayed
    latents = fit_latents(np.concatenate([patches, turned]), VAESettings(invariance="rotation", epochs=40))
    offset = np.exp(1j * (latents.angle[:600] - angles))
    assert abs(offset.mean()) > 0.95  # one constant offset: the angle is the turn
    difference = np.degrees(np.angle(np.exp(1j * (latents.angle[600:] - latents.angle[:60]))))
    assert abs(np.median(difference) - 90) < 5
    assert np.all(np.abs(difference - 90) < 20)


def test_a_four_fold_symmetric_structure_keeps_one_angle():
    """Every quarter turn explains a four-fold symmetric patch about equally well, so the
    multi-start over quarter turns leaves it at its own encoding: its angle stays one orientation
    instead of a random quarter turn per patch (which clustering would read as four variants)."""
    yy, xx = np.mgrid[-1 : 1 : SIDE * 1j, -1 : 1 : SIDE * 1j]
    blobs = ((0.0, 0.0, 1.0), (0.5, 0.0, 0.5), (-0.5, 0.0, 0.5), (0.0, 0.5, 0.5), (0.0, -0.5, 0.5))
    cross = sum(height * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 0.15**2)) for x, y, height in blobs)
    patches = cross + 0.05 * np.random.default_rng(3).normal(size=(300, SIDE, SIDE))
    latents = fit_latents(patches, VAESettings(invariance="rotation", epochs=20))
    assert abs(np.exp(1j * latents.angle).mean()) > 0.9


@pytest.fixture(scope="module")
def stripes():
    """Four polar variants in stripes, 24 x 24 cells, with truth."""
    return generate(SyntheticParams(shape=(384, 384), domains="four_stripes", period_cells=12, dose=300), seed=4)


def test_vae_descriptor_describes_b_sites_inside_the_image(stripes):
    workflow = Workflow.from_sample(stripes)
    lattice = workflow.lattice
    features = compute_descriptor("vae", stripes.image, lattice, window=2.0, epochs=2)
    b_sites = lattice.site_indices("B")
    assert np.isin(features.sites, b_sites).all()
    assert len(features.sites) + features.n_skipped == len(b_sites)
    assert features.info["device"] == "cpu" and features.info["seconds"] > 0
    assert set(features.named) == {"angle_deg", "dx", "dy", "z1", "z2"}
    with pytest.raises(DescriptorUnavailable, match="only positions"):
        compute_descriptor("vae", None, lattice)


def test_changing_only_the_clustering_reuses_the_trained_vae(stripes):
    workflow = Workflow.from_sample(stripes, space="vae")
    config = {"n_clusters": 4, "epochs": 10}
    first = workflow.evaluate(config)
    features = workflow.features(VAE_SPACE.canonical(config))
    workflow.evaluate({**config, "n_clusters": 3, "clustering": "kmeans"})
    assert workflow.features(VAE_SPACE.canonical({**config, "n_clusters": 3})) is features
    assert first.config["descriptor"] == "vae" and 0 <= first.reward <= 1
    assert first.config_px["window"] == window_pixels(2.0, workflow.lattice.lattice_constant_px)


@pytest.mark.slow
def test_the_reward_picks_a_vae_that_finds_the_four_variants(stripes):
    """A known answer: among VAEs of every invariance and three KL weights (one training can end
    in a poor optimum), the one the default reward prefers recovers the true variants."""
    workflow = Workflow.from_sample(stripes, space="vae")
    evaluations = [workflow.evaluate({"invariance": invariance, "kl_weight": weight, "n_clusters": 4})
                   for invariance in VAE_SPACE["invariance"].grid for weight in (0.3, 1.0, 3.0)]
    best = max(evaluations, key=lambda e: e.reward)
    assert best.metrics["ari"] > 0.9


def test_vae_env_runs_a_whole_episode_with_vae_actions():
    env = gym.make("ferrogym/DomainWallsVAE-v1", images="synthetic:0-1,shape=200x200", budget=3)
    assert env.unwrapped.space is VAE_SPACE
    env.action_space.seed(0)
    env.reset(seed=0)
    for step in range(3):
        action = env.action_space.sample()
        action[VAE_SPACE.names.index("epochs")] = 0  # the fewest epochs keep the test fast
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert info["config"]["descriptor"] == "vae" and info["config"] == VAE_SPACE.from_indices(action)
    assert terminated and not truncated


def test_spaces_are_named_and_unknown_names_are_refused():
    assert SPACES == {"descriptors": SEARCH_SPACE, "vae": VAE_SPACE}
    assert get_space("vae") is VAE_SPACE and get_space(SEARCH_SPACE) is SEARCH_SPACE
    with pytest.raises(InputError, match="unknown search space 'vea'"):
        get_space("vea")
    for space in SPACES.values():
        assert set(space.coarse) <= set(space.names)
