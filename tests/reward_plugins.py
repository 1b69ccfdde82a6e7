"""A custom reward importable by name, as a user's own module would be (used by test_envs)."""

from ferrogym.workflows.rewards import RewardResult, wall_components


def wall_count(segmentation):
    """More wall segments score higher: a deliberately different reward, in [0, 1]."""
    components = wall_components(segmentation)
    return RewardResult(components["n_walls"] / (1.0 + components["n_walls"]), components)
