"""A custom reward importable by name, as a user's own module would be (used by test_envs)."""

from ferrogym.workflows.rewards import RewardResult, wall_components


def wall_count(segmentation):
    """More wall segments score higher: a deliberately different reward, in [0, 1]."""
    components = wall_components(segmentation)
    return RewardResult(components["n_walls"] / (1.0 + components["n_walls"]), components)


def wall_share(segmentation):
    """A plain-float reward: the share of labelled sites that sit on a wall."""
    labelled = max(int((segmentation.labels >= 0).sum()), 1)
    return float(len(segmentation.wall_bonds)) / (len(segmentation.wall_bonds) + labelled)
