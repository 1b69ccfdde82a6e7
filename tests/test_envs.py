"""The Gymnasium envs: API conformance, determinism, bounds, custom rewards, rendering, errors."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from ferrogym.envs import DiscreteActions, DomainWallsBanditEnv, DomainWallsEnv, register_reward_env
from ferrogym.envs.observation import IMAGE, SEGMENTATION, markdown_table
from ferrogym.envs.search import ENTRIES
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.images import ArrayImage, PositionFiles
from ferrogym.workflows.rewards import REWARDS
from ferrogym.workflows.space import SEARCH_SPACE
from ferrogym.workflows.synthetic import SyntheticParams, generate

import reward_plugins

#: Small synthetic images keep env tests fast (about 8 x 8 unit cells).
SMALL = "synthetic:0-3,shape=200x200"
IDS = ["ferrogym/DomainWalls-v1", "ferrogym/DomainWallsBandit-v1", "ferrogym/DomainWallsVAE-v1", "DomainWalls-v1",
       "DomainWallsBandit-v1", "DomainWallsVAE-v1"]


def rollout(env, seed: int, actions):
    """Observations, rewards and infos of a seeded rollout with fixed actions (resetting as needed)."""
    observations, rewards, infos = [], [], []
    obs, info = env.reset(seed=seed)
    observations.append(obs)
    infos.append(info)
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            obs, info = env.reset()
            observations.append(obs)
            infos.append(info)
    return observations, rewards, infos


def random_actions(n: int, seed: int) -> list[np.ndarray]:
    space = gym.spaces.MultiDiscrete(SEARCH_SPACE.grid_sizes, seed=seed)
    return [space.sample() for _ in range(n)]


def test_every_ferrogym_id_is_registered_on_import():
    registered = {env_id for env_id in gym.registry if "DomainWalls" in env_id}
    assert set(IDS) <= registered


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id, images=SMALL, render_mode="rgb_array", **({"budget": 3} if "Bandit" not in env_id else {}))
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)


def test_module_prefixed_id_imports_the_package():
    env = gym.make("ferrogym.envs:DomainWalls-v1", images=SMALL, budget=2)
    assert isinstance(env.unwrapped, DomainWallsEnv)


def test_same_seed_same_actions_same_everything():
    actions = random_actions(7, seed=1)
    first = rollout(DomainWallsEnv(SMALL, budget=3), 5, actions)
    second = rollout(DomainWallsEnv(SMALL, budget=3), 5, actions)
    for a, b in zip(first[0], second[0]):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    assert first[2] == second[2]


def test_sync_and_async_vector_envs_agree():
    actions = np.stack(random_actions(6, seed=2)).reshape(3, 2, -1)
    results = []
    for vector in (gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv):
        envs = vector([lambda: gym.make("ferrogym/DomainWalls-v1", images=SMALL, budget=3)] * 2)
        obs, _ = envs.reset(seed=[3, 4])
        trace = [obs]
        for step_actions in actions:
            obs, reward, terminated, truncated, info = envs.step(step_actions)
            trace += [obs, reward, info["reward"], info["metrics"]["ari"], info["image"]]
        envs.close()
        results.append(trace)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_improvement_rewards_sum_to_the_best_reward():
    env = DomainWallsEnv(SMALL, budget=6)
    env.reset(seed=0)
    total, raw = 0.0, []
    for action in random_actions(6, seed=3):
        _, reward, terminated, _, info = env.step(action)
        total += reward
        raw.append(info["reward"])
        assert reward >= 0
    assert terminated
    assert total == pytest.approx(max(raw))
    assert info["best_reward"] == max(raw)
    assert info["evaluations"] == 6


def test_raw_mode_pays_each_evaluation():
    env = DomainWallsEnv(SMALL, budget=3, reward_mode="raw")
    env.reset(seed=0)
    for action in random_actions(3, seed=4):
        _, reward, _, _, info = env.step(action)
        assert reward == info["reward"]


def test_observation_tracks_the_search():
    env = DomainWallsEnv(SMALL, budget=4)
    obs, _ = env.reset(seed=0)
    names = [e.name for e in ENTRIES]
    assert obs[names.index("budget_used")] == 0 and obs[names.index("best_reward")] == 0
    action = SEARCH_SPACE.to_indices({"descriptor": "displacement", "reduction": "none", "n_clusters": 2})
    obs, reward, _, _, info = env.step(action)
    assert obs[names.index("budget_used")] == pytest.approx(0.25)
    assert obs[names.index("best_reward")] == pytest.approx(info["best_reward"])
    assert obs[names.index("descriptor=displacement")] == 1 and obs[names.index("descriptor=patch")] == 0
    assert obs[names.index("n_clusters")] == 0  # the first grid value
    fractions = obs[[names.index(f"cluster_fraction_{i}") for i in range(8)]]
    assert np.all(np.diff(fractions) <= 0) and fractions.sum() == pytest.approx(1, abs=1e-5)


def test_info_reports_human_units_and_truth():
    env = DomainWallsBanditEnv(SMALL)
    env.reset(seed=0)
    action = SEARCH_SPACE.to_indices({"descriptor": "patch", "window_x": 1.0, "window_y": 2.0})
    _, _, terminated, _, info = env.step(action)
    assert terminated
    a = info["config_px"]["lattice_constant_px"]
    assert info["config"]["window_y"] == 2.0 and info["config_px"]["window_y"] == pytest.approx(2 * a, abs=1.5)
    assert set(info["metrics"]) == {"ari", "assigned", "wall_f1"}
    assert info["image"].startswith("synthetic:")
    assert "seconds" not in str(info)


def test_reset_option_names_the_image_and_draws_stay_in_the_seed_range():
    env = DomainWallsBanditEnv("synthetic:10-13,shape=200x200")
    _, info = env.reset(seed=0, options={"image": 2})
    assert info["image"] == "synthetic:12"
    drawn = {env.reset()[1]["image"] for _ in range(12)}
    assert drawn <= {f"synthetic:{s}" for s in range(10, 14)} and len(drawn) > 1


@pytest.fixture(scope="module")
def small_sample():
    return generate(SyntheticParams(shape=(200, 200), domains="stripes", dose=200.0), seed=7)


def test_reward_keyword_picks_a_built_in(small_sample):
    env = gym.make("ferrogym/DomainWallsBandit-v1", images=small_sample.image, reward="straightness")
    env.reset(seed=0)
    action = SEARCH_SPACE.to_indices({"descriptor": "displacement", "reduction": "none", "n_clusters": 2})
    _, reward, _, _, info = env.step(action)
    expected = REWARDS["straightness"](env.unwrapped.evaluation.segmentation).value
    assert reward == expected and info["metrics"] == {}  # an array carries no truth


def step_two_spawned_processes(env_id: str) -> tuple[np.ndarray, list[dict]]:
    """Rewards and infos of one step of SB3's SubprocVecEnv (fresh 'spawn' processes) on env_id."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    actions = np.stack(random_actions(2, seed=5))
    vec = make_vec_env(env_id, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "spawn"})
    vec.reset()
    _, rewards, _, infos = vec.step(actions)
    vec.close()
    return rewards, infos


def test_custom_reward_by_string_in_a_two_process_vector_env():
    env_id = register_reward_env("WallCountTest", "reward_plugins:wall_count", images=SMALL, budget=2)
    assert env_id == "ferrogym.envs:ferrogym/WallCountTest-v0"
    rewards, infos = step_two_spawned_processes(env_id)
    for info, reward in zip(infos, rewards):
        assert reward == pytest.approx(info["components"]["n_walls"] / (1 + info["components"]["n_walls"]))


def test_plain_float_custom_reward_in_two_process_vector_env():
    env_id = register_reward_env("WallShareTest", "reward_plugins:wall_share", images=SMALL, budget=2,
                                 reward_mode="raw")
    rewards, infos = step_two_spawned_processes(env_id)
    for info, reward in zip(infos, rewards):
        assert info["components"] == {}
        assert reward == pytest.approx(info["reward"]) and 0.0 <= reward < 1.0


def test_custom_callable_reward_becomes_importable_by_name():
    env_id = register_reward_env("WallCountCallable", reward_plugins.wall_count, bandit=True, images=SMALL)
    env = gym.make(env_id)
    assert isinstance(env.unwrapped, DomainWallsBanditEnv)
    assert gym.spec(env_id.split(":", 1)[1]).kwargs["reward"] == "reward_plugins:wall_count"


def test_register_reward_env_rejects_bad_input():
    with pytest.raises(InputError, match="unknown reward"):
        register_reward_env("Nope", "no_such_reward")
    with pytest.raises(InputError, match="built-in"):
        register_reward_env("DomainWalls", "combined")
    with pytest.raises(InputError, match="env name"):
        register_reward_env("bad name", "combined")


def test_render_returns_the_segmentation_figure():
    env = DomainWallsEnv(SMALL, budget=2, render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    env.step(random_actions(1, seed=6)[0])
    after = env.render()
    assert before.dtype == np.uint8 and before.ndim == 3 and before.shape[2] == 3
    assert after.shape == before.shape and not np.array_equal(after, before)
    assert DomainWallsEnv(SMALL).render() is None


def test_discrete_wrapper_enumerates_distinct_configurations():
    env = DiscreteActions(DomainWallsEnv(SMALL, budget=2))
    grid = SEARCH_SPACE.grid()
    assert env.action_space.n == len(grid) == len({tuple(c.values()) for c in grid})
    env.reset(seed=0)
    _, _, _, _, info = env.step(123)
    assert info["config"] == grid[123]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(DiscreteActions(DomainWallsBanditEnv(SMALL), configs=grid[:10]))


def test_bad_arguments_and_misuse_explain_themselves():
    with pytest.raises(InputError, match="reward_mode"):
        DomainWallsEnv(SMALL, reward_mode="best")
    with pytest.raises(InputError, match="budget"):
        DomainWallsEnv(SMALL, budget=0)
    with pytest.raises(InputError, match="render_mode"):
        DomainWallsEnv(SMALL, render_mode="human")
    env = DomainWallsEnv(SMALL, budget=1)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(random_actions(1, seed=0)[0])
    with pytest.raises(InputError, match="image=9"):
        env.reset(seed=0, options={"image": 9})
    with pytest.raises(InputError, match="unknown reset option"):
        env.reset(seed=0, options={"seed": 1})
    env.reset(seed=0)
    with pytest.raises(InputError, match="not in"):
        env.step(np.full(len(SEARCH_SPACE.params), 99))
    env.step(random_actions(1, seed=0)[0])
    with pytest.raises(gym.error.ResetNeeded, match="budget"):
        env.step(random_actions(1, seed=0)[0])


def test_docstrings_and_readme_carry_the_observation_tables():
    from conftest import REPOSITORY

    readme = (REPOSITORY / "README.md").read_text()
    for entries, env in ((ENTRIES, DomainWallsEnv), (IMAGE, DomainWallsBanditEnv)):
        table = markdown_table(entries)
        assert table in readme
        docstring_lines = {line.strip() for line in env.__doc__.splitlines()}
        assert set(table.splitlines()) <= docstring_lines


# --- property test: any action on any kind of input -------------------------------------------


@pytest.fixture(scope="module")
def property_envs(small_sample, shared_data_file_optional):
    """Envs over a synthetic image, positions only (mixed and split), and real SrTiO3 if present."""
    truth = small_sample.truth
    sublattice = truth.sublattice
    sources = {
        "synthetic": dict(images=SMALL),
        "positions with sublattice": dict(positions=truth.xy, sublattice=sublattice),
        "positions only": dict(images=ArrayImage(positions=truth.xy[sublattice == "A"])),
    }
    sources.update(shared_data_file_optional)
    return {name: DomainWallsEnv(budget=1000, **kwargs) for name, kwargs in sources.items()}


@pytest.fixture(scope="module")
def shared_data_file_optional():
    from conftest import SHARED_DATA

    found = {}
    if (SHARED_DATA / "SrTiO3_ADF_cropped.hdf5").is_file():
        found["SrTiO3"] = dict(images=str(SHARED_DATA / "SrTiO3_ADF_cropped.hdf5"))
    if (SHARED_DATA / "PbTiO3_junction_column_positions.npy").is_file():
        found["PbTiO3 positions"] = dict(images=PositionFiles((SHARED_DATA / "PbTiO3_junction_column_positions.npy",)))
    return found


@pytest.mark.filterwarnings("ignore:.*but no units; assumed nm")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_action_on_any_input_stays_in_bounds(property_envs, data):
    name = data.draw(st.sampled_from(sorted(property_envs)))
    env = property_envs[name]
    if env.workflow is None:
        env.reset(seed=0)
    action = np.array([data.draw(st.integers(0, n - 1)) for n in SEARCH_SPACE.grid_sizes])
    obs, reward, _, _, info = env.step(action)
    assert env.observation_space.contains(obs), name
    assert np.isfinite(reward) and 0.0 <= info["reward"] <= 1.0
    assert 0.0 <= reward <= 1.0
    assert len(obs) == len(ENTRIES) and len(IMAGE) + len(SEGMENTATION) < len(ENTRIES)


def test_property_inputs_include_real_data_when_present(property_envs):
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} not available")
    assert {"SrTiO3", "PbTiO3 positions"} <= set(property_envs)


# --- a learning agent runs on the env ----------------------------------------------------------


@pytest.mark.slow
def test_ppo_trains_a_few_hundred_steps_on_the_bandit():
    from stable_baselines3 import PPO

    env = gym.make("ferrogym/DomainWallsBandit-v1", images="synthetic:0-3,shape=160x160", cache_images=4)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert env.action_space.contains(action)


class _ThreadReport(gym.Wrapper):
    """Reports the BLAS/OpenMP threads of the process the env lives in."""

    def blas_threads(self) -> list[int]:
        from threadpoolctl import threadpool_info

        return [pool["num_threads"] for pool in threadpool_info()]


def _reporting_env():
    return _ThreadReport(DomainWallsEnv(SMALL, budget=2))


def test_an_env_in_a_worker_process_computes_on_one_thread():
    """Two vector-env workers on two cores, each with a BLAS pool of two threads, fight over the
    cores; each worker keeps to one thread."""
    envs = gym.vector.AsyncVectorEnv([_reporting_env, _reporting_env])
    try:
        for threads in envs.call("blas_threads"):
            assert threads and set(threads) == {1}
    finally:
        envs.close()
