"""Gymnasium environments that tune the ferrogym workflow by rewarding physical domain walls.

Importing this package registers:

- ``ferrogym/DomainWalls-v1`` (:class:`DomainWallsEnv`): budgeted search episodes on one image;
- ``ferrogym/DomainWallsBandit-v1`` (:class:`DomainWallsBanditEnv`): one evaluation per image;
- ``ferrogym/DomainWallsVAE-v1``: search episodes over the rotation-invariant VAE's space
  (``DomainWallsEnv`` with ``space="vae"``).

All are also reachable as ``gymnasium.make("ferrogym.envs:DomainWalls-v1")`` without importing
first. :func:`register_reward_env` adds ids with other rewards; :class:`DiscreteActions` gives
DQN a ``Discrete`` action space.
"""

from .bandit import DomainWallsBanditEnv
from .observation import markdown_table
from .registration import register_built_in, register_reward_env, replay_registrations
from .search import DomainWallsEnv
from .wrappers import DiscreteActions

register_built_in()
replay_registrations()

__all__ = ["DomainWallsEnv", "DomainWallsBanditEnv", "DiscreteActions", "register_reward_env", "markdown_table"]
