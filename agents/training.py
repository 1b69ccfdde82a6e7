"""Train Stable-Baselines3 agents (PPO, A2C, DQN) on the ferrogym envs, reproducibly.

A run directory keeps everything needed to reproduce the run and to reuse its policy as a
searcher (:mod:`ferrogym.agents.policy`):

- ``run.json``: algorithm, env id and keyword arguments, the reward trained on (``reward``),
  evaluation images, seed, number of envs, timesteps done and training seconds (updated at every checkpoint), package versions;
- ``hyperparams.yml``: the exact hyperparameters used (from a Zoo-style YAML file);
- ``model.zip``: the final model; ``checkpoints/``: regular checkpoints (``--resume`` continues
  from the newest); ``best/``: the best model on the held-out images;
- ``tb/``: TensorBoard logs with the episode reward (``rollout/ep_rew_mean``), the reward
  components and the truth ARI of each episode's best configuration (``ferrogym/...``), and the
  evaluation on held-out images (``eval/...``).
"""

from __future__ import annotations

import json
import re
import time
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import ferrogym.envs  # noqa: F401  (registers the ids)
from ferrogym.envs import DiscreteActions
from ferrogym.envs.registration import BUILT_IN
from ferrogym.workflows.errors import InputError
from ferrogym.workflows.rewards import REWARDS

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "dqn": DQN}
#: Algorithms that need a Discrete action space (wrapped with DiscreteActions).
DISCRETE = {"dqn"}
#: Keys of a hyperparameter entry that are not keyword arguments of the algorithm.
NON_ALGORITHM_KEYS = ("policy", "n_envs")


def registry_id(env_id: str) -> str:
    """The registry key of an id, without a ``module:`` prefix."""
    return env_id.split(":", 1)[1] if ":" in env_id else env_id


def importable_id(env_id: str) -> str:
    """The id with a ``module:`` prefix, so a fresh subprocess imports the module that registers
    it (ferrogym's for unprefixed ids): subprocess envs do not share this process's registry."""
    return env_id if ":" in env_id else f"ferrogym.envs:{env_id}"


def load_hyperparams(algo: str, env_id: str, path: str | Path | None = None) -> dict[str, Any]:
    """The hyperparameters of ``algo`` for ``env_id`` from a Zoo-style YAML file.

    The file maps env ids to keyword arguments (default: the one shipped for the algorithm). An
    id missing from the file, such as one made by ``register_reward_env``, takes the entry of
    the built-in env it is based on (search or bandit).
    """
    if algo not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algo!r}; use one of {sorted(ALGORITHMS)}")
    if path is None:
        text = resources.files("ferrogym.agents").joinpath(f"hyperparams/{algo}.yml").read_text()
        source = f"the shipped {algo}.yml"
    else:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"hyperparameter file {path} not found")
        text, source = path.read_text(), str(path)
    table = yaml.safe_load(text) or {}
    key = registry_id(env_id)
    if key not in table:
        key = _built_in_base(key)
    if key not in table:
        raise InputError(f"{source} has no entry for {registry_id(env_id)!r} (entries: {sorted(table)})")
    return dict(table[key])


def _built_in_base(env_id: str) -> str:
    """The built-in id whose env class ``env_id`` uses."""
    try:
        entry_point = gym.spec(env_id).entry_point
    except gym.error.Error as error:
        raise InputError(f"unknown env id {env_id!r}: {error}") from error
    return next((i for i, e in BUILT_IN.items() if e == entry_point), env_id)


class EpisodeInfoLogger(BaseCallback):
    """Logs each finished episode's reward components and truth ARI to TensorBoard.

    For search episodes the logged values are those of the episode's best configuration
    (``best_metrics``) and of its last evaluation's components; for the bandit, of the one
    evaluation.
    """

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if not done or "components" not in info:
                continue
            for name, value in info["components"].items():
                self.logger.record_mean(f"ferrogym/{name}", float(value))
            metrics = info.get("best_metrics", info.get("metrics", {}))
            if "ari" in metrics:
                self.logger.record_mean("ferrogym/ari", float(metrics["ari"]))
            self.logger.record_mean("ferrogym/best_reward", float(info.get("best_reward", info["reward"])))
        return True


def make_envs(algo: str, env_id: str, env_kwargs: dict, n_envs: int, seed: int, subprocesses: bool | None = None):
    """A seeded vector env (subprocesses when ``n_envs > 1`` by default), Discrete-wrapped for DQN."""
    subprocesses = n_envs > 1 if subprocesses is None else subprocesses
    return make_vec_env(
        importable_id(env_id),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        wrapper_class=DiscreteActions if algo in DISCRETE else None,
        vec_env_cls=SubprocVecEnv if subprocesses else DummyVecEnv,
    )


def train(
    algo: str,
    env_id: str,
    timesteps: int,
    out: str | Path,
    *,
    n_envs: int | None = None,
    seed: int = 0,
    env_kwargs: dict | None = None,
    eval_images: str | None = None,
    eval_episodes: int = 8,
    eval_freq: int = 1000,
    checkpoint_freq: int = 1000,
    hyperparams: str | Path | None = None,
    resume: bool = False,
    progress_bar: bool = False,
) -> Path:
    """Train ``algo`` on ``env_id`` for ``timesteps`` steps in total; return the run directory.

    With ``resume`` the newest checkpoint in ``out`` is loaded and training continues to
    ``timesteps`` in total, with the run's recorded settings (which must match). ``eval_images``
    (a SPEC such as ``synthetic:1000-1015``) are held-out images the policy is scored on every
    ``eval_freq`` steps.
    """
    out = Path(out)
    if algo not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algo!r}; use one of {sorted(ALGORITHMS)}")
    if timesteps < 1:
        raise InputError(f"timesteps={timesteps}; train for at least one step")
    params = load_hyperparams(algo, env_id, hyperparams)
    n_envs = int(n_envs or params.get("n_envs", 1))
    run = {
        "algo": algo,
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "eval_images": eval_images,
        "seed": seed,
        "n_envs": n_envs,
        "discrete": algo in DISCRETE,
    }
    _check_jsonable(run)
    run["reward"] = _check_env(env_id, run["env_kwargs"])
    if eval_images:
        _check_env(env_id, {**run["env_kwargs"], "images": eval_images})
    previous = _read_run(out) if resume else None
    if previous is not None:
        _check_same_run(previous, run)
        params = yaml.safe_load((out / "hyperparams.yml").read_text())
    elif (out / "run.json").exists() and not resume:
        raise InputError(f"{out} already holds a run; use --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "hyperparams.yml").write_text(yaml.safe_dump(params, sort_keys=True))
    if previous is None:
        _write_run(out, run, 0, 0.0)
    spent = (previous or {}).get("train_seconds", 0.0)

    envs = make_envs(algo, env_id, run["env_kwargs"], n_envs, seed)
    checkpoint = _newest_checkpoint(out) if resume else None
    model = _load_or_create(algo, params, envs, seed, out, checkpoint)
    remaining = timesteps - model.num_timesteps
    start = time.perf_counter()
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=_callbacks(algo, env_id, run, out, n_envs, seed, eval_episodes, eval_freq, checkpoint_freq,
                                spent),
            reset_num_timesteps=checkpoint is None,
            tb_log_name="run",
            progress_bar=progress_bar,
        )
    envs.close()
    model.save(out / "model.zip")
    _write_run(out, run, model.num_timesteps, spent + time.perf_counter() - start)
    return out


def _write_run(out: Path, run: dict, timesteps: int, seconds: float) -> None:
    record = {**run, "timesteps": int(timesteps), "train_seconds": round(seconds, 1), "versions": _versions()}
    (out / "run.json").write_text(json.dumps(record, indent=2))


class RunRecorder(BaseCallback):
    """Updates run.json's timesteps and training seconds at every checkpoint, so a killed run
    resumed later still reports its whole cost (up to the newest checkpoint)."""

    def __init__(self, out: Path, run: dict, save_freq: int, seconds_before: float):
        super().__init__()
        self.out, self.run, self.save_freq, self.seconds_before = out, run, save_freq, seconds_before
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            _write_run(self.out, self.run, self.num_timesteps, self.seconds_before + time.perf_counter() - self.start)
        return True


def _load_or_create(algo, params, envs, seed, out, checkpoint) -> BaseAlgorithm:
    cls = ALGORITHMS[algo]
    if checkpoint is not None:
        model = cls.load(checkpoint, env=envs, device="cpu", tensorboard_log=str(out / "tb"))
        buffer = checkpoint.with_name(checkpoint.name.replace("model_", "model_replay_buffer_")).with_suffix(".pkl")
        if algo in DISCRETE and buffer.exists():
            model.load_replay_buffer(buffer)
        return model
    kwargs = {k: v for k, v in params.items() if k not in NON_ALGORITHM_KEYS}
    return cls(params.get("policy", "MlpPolicy"), envs, seed=seed, device="cpu", tensorboard_log=str(out / "tb"),
               verbose=0, **kwargs)


def _callbacks(algo, env_id, run, out, n_envs, seed, eval_episodes, eval_freq, checkpoint_freq,
               seconds_before) -> CallbackList:
    save_freq = max(checkpoint_freq // n_envs, 1)
    callbacks: list[BaseCallback] = [
        EpisodeInfoLogger(),
        CheckpointCallback(save_freq=save_freq, save_path=str(out / "checkpoints"), name_prefix="model",
                           save_replay_buffer=algo in DISCRETE),
        RunRecorder(out, run, save_freq, seconds_before),
    ]
    if run["eval_images"]:
        eval_kwargs = {**run["env_kwargs"], "images": run["eval_images"]}
        # The same vector-env class as training, as EvalCallback expects.
        eval_env = make_envs(algo, env_id, eval_kwargs, 1, seed + 10_000, subprocesses=n_envs > 1)
        callbacks.append(
            EvalCallback(
                eval_env,
                n_eval_episodes=eval_episodes,
                eval_freq=max(eval_freq // n_envs, 1),
                best_model_save_path=str(out / "best"),
                log_path=str(out / "eval"),
                deterministic=True,
                verbose=0,
            )
        )
    return CallbackList(callbacks)


def _newest_checkpoint(out: Path) -> Path | None:
    """The checkpoint with the most steps, or None."""
    found = []
    for path in (out / "checkpoints").glob("model_*_steps.zip"):
        match = re.fullmatch(r"model_(\d+)_steps\.zip", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def _read_run(out: Path) -> dict | None:
    """The recorded run in ``out``, or None when there is none to resume."""
    path = out / "run.json"
    return json.loads(path.read_text()) if path.exists() else None


def reward_name(reward) -> str:
    """How run.json names the reward a policy is trained on: its registered name, else
    ``module:qualname``."""
    registered = [name for name, function in REWARDS.items() if function is reward]
    if registered:
        return registered[0]
    return f"{getattr(reward, '__module__', '?')}:{getattr(reward, '__qualname__', repr(reward))}"


def _check_same_run(previous: dict, run: dict) -> None:
    for key, value in run.items():
        if key in previous and previous[key] != value:
            raise InputError(
                f"--resume: {key} was {previous[key]!r} in the run being resumed, now {value!r}; "
                "resume with the same settings or start a new --out"
            )


def _check_env(env_id: str, env_kwargs: dict) -> str:
    """Make the env once here, so bad env arguments end as an InputError of this process rather
    than as tracebacks of subprocess envs and a broken pipe; return the name of its reward."""
    try:
        env = gym.make(importable_id(env_id), **env_kwargs)
    except TypeError as error:
        raise InputError(f"env {env_id!r} does not take these arguments ({error}); check --env-kwarg") from None
    except gym.error.Error as error:
        raise InputError(f"env {env_id!r}: {error}") from None
    name = reward_name(env.unwrapped.reward_fn)
    env.close()
    return name


def _check_jsonable(run: dict) -> None:
    try:
        json.dumps(run)
    except TypeError as error:
        raise InputError(f"env keyword arguments must be plain values (strings, numbers): {error}") from None


def _versions() -> dict[str, str]:
    names = ("ferrogym", "stable-baselines3", "gymnasium", "torch", "numpy", "scikit-learn")
    return {name: metadata.version(name) for name in names}

