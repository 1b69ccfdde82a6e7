"""Env ids: the built-in ones, and custom-reward ids that work in subprocess vector envs.

Subprocess vector envs (``gymnasium.vector.AsyncVectorEnv`` with ``spawn``/``forkserver``, SB3's
``SubprocVecEnv``) start fresh interpreters that do not share the parent's registry. So
:func:`register_reward_env` (1) records each importable registration in the environment
variable :data:`ENV_VARIABLE`, which child processes inherit and ``import ferrogym.envs``
replays, and (2) returns the id prefixed with ``ferrogym.envs:``, which makes
``gymnasium.make`` import this package, and so replay the registrations, in any process.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import gymnasium as gym

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.rewards import get_reward

#: Inherited by child processes: {env id: {"reward": "module:function", "kwargs": {...}}}.
ENV_VARIABLE = "FERROGYM_REWARD_ENVS"

SEARCH_ENTRY_POINT = "ferrogym.envs.search:DomainWallsEnv"
BANDIT_ENTRY_POINT = "ferrogym.envs.bandit:DomainWallsBanditEnv"

BUILT_IN = {
    "ferrogym/DomainWalls-v1": SEARCH_ENTRY_POINT,
    "ferrogym/DomainWallsBandit-v1": BANDIT_ENTRY_POINT,
    "ferrogym/DomainWallsVAE-v1": SEARCH_ENTRY_POINT,
}
#: Default keyword arguments of the built-in ids that have any.
BUILT_IN_KWARGS = {"ferrogym/DomainWallsVAE-v1": {"space": "vae"}}


def register_built_in() -> None:
    """Register the built-in ids, also without namespace for ``"ferrogym.envs:DomainWalls-v1"``."""
    for env_id, entry_point in BUILT_IN.items():
        for alias in (env_id, env_id.split("/", 1)[1]):
            if alias not in gym.registry:
                gym.register(alias, entry_point=entry_point, kwargs=BUILT_IN_KWARGS.get(env_id, {}))


def register_reward_env(name: str, reward: Any, *, bandit: bool = False, **defaults) -> str:
    """Register an env id that scores segmentations with ``reward``; return the id to make.

    Parameters
    ----------
    name : the new env's name, e.g. ``"StraightWalls"`` (registered as
        ``ferrogym/StraightWalls-v0``; a ``-vN`` suffix is kept).
    reward : a registered reward name, ``"module:function"`` or a callable. Only a name, a
        string or a callable importable by module and name is visible to subprocess vector envs
        started with spawn/forkserver; a lambda or a function defined in ``__main__`` works in
        this process, with ``fork``, and with ``gymnasium.make_vec`` (which pickles the spec).
    bandit : register a single-shot env (``DomainWallsBandit``) instead of search episodes.
    **defaults : keyword arguments of the env (``images``, ``budget``, ...), overridable at make.

    Returns
    -------
    str
        ``"ferrogym.envs:ferrogym/<name>-v0"``: pass it to ``gymnasium.make``,
        ``gymnasium.make_vec`` or SB3's ``make_vec_env``.
    """
    if not re.fullmatch(r"[A-Za-z][\w.]*(-v\d+)?", name):
        raise InputError(f"env name {name!r}: use letters, digits, '_' or '.', optionally ending in -vN")
    env_id = f"ferrogym/{name}" if re.search(r"-v\d+$", name) else f"ferrogym/{name}-v0"
    if _base(env_id) in {_base(built_in) for built_in in BUILT_IN}:
        raise InputError(f"{env_id} is a version of a built-in env; choose another name")
    get_reward(reward)  # fail now, with the reward's own message, not in a child process
    kwargs = {**defaults, "reward": _portable(reward)}
    entry_point = BANDIT_ENTRY_POINT if bandit else SEARCH_ENTRY_POINT
    gym.register(env_id, entry_point=entry_point, kwargs=kwargs)
    _remember(env_id, entry_point, kwargs)
    return f"ferrogym.envs:{env_id}"


def _base(env_id: str) -> str:
    """The id without its version: ``ferrogym/DomainWalls`` for every ``ferrogym/DomainWalls-vN``."""
    return re.sub(r"-v\d+$", "", env_id)


def replay_registrations() -> None:
    """Register what a parent process recorded in :data:`ENV_VARIABLE` (run on import)."""
    for env_id, record in json.loads(os.environ.get(ENV_VARIABLE, "{}")).items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=record["entry_point"], kwargs=record["kwargs"])


def _portable(reward: Any) -> Any:
    """A callable importable by name becomes ``"module:qualname"``, so children can import it."""
    if isinstance(reward, str) or not callable(reward):
        return reward
    module, qualname = getattr(reward, "__module__", None), getattr(reward, "__qualname__", "")
    if module and module != "__main__" and "<" not in qualname:
        candidate = f"{module}:{qualname}"
        try:
            if get_reward(candidate) is reward:
                return candidate
        except InputError:
            pass
    return reward


def _remember(env_id: str, entry_point: str, kwargs: dict) -> None:
    """Record a registration for child processes, if it can be written as JSON."""
    try:
        record = json.dumps({"entry_point": entry_point, "kwargs": kwargs})
    except TypeError:
        return  # a callable or array argument: usable in this process (and via make_vec) only
    records = json.loads(os.environ.get(ENV_VARIABLE, "{}"))
    records[env_id] = json.loads(record)
    os.environ[ENV_VARIABLE] = json.dumps(records)
