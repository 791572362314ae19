"""D4RL normalised scores: ``100 (R - R_random) / (R_expert - R_random)`` with D4RL v2 references,
and the forward speed that D4RL's files hold, the per-step quantity their reward mostly pays for.
"""

from __future__ import annotations

# (random, expert) episode returns of D4RL v2, keyed by the Gymnasium task family.
D4RL_REFERENCE: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
}


# Where the torso's forward velocity (qvel[0]) sits in the observation of Gymnasium's MuJoCo tasks
# (the observation is qpos without the x position, then qvel).
FORWARD_VELOCITY_INDEX: dict[str, int] = {"hopper": 5, "halfcheetah": 8, "walker2d": 8}

# Mean and standard deviation of that entry over every transition of D4RL v2's files: the observation
# normalisation published with the Decision Transformer models trained on them (Hugging Face
# ``edbeeching/decision-transformer-gym-<task>-<level>``). D4RL publishes no per-file return table;
# the forward speed is the statistic of its files that is on record, and the one a locomotion reward
# follows step by step.
D4RL_FORWARD_VELOCITY: dict[tuple[str, str], tuple[float, float]] = {
    ("hopper", "medium"): (2.1066856, 0.85174465),
    ("hopper", "medium-replay"): (1.3694725, 1.0510299),
    ("hopper", "expert"): (2.6071432, 0.5899924),
    ("halfcheetah", "medium"): (5.1730075, 1.2574149),
    ("halfcheetah", "medium-replay"): (3.4768248, 2.0931616),
    ("halfcheetah", "expert"): (11.047426, 2.2105937),
    ("walker2d", "medium"): (2.3948874, 1.2387927),
    ("walker2d", "medium-replay"): (1.4701707, 1.3763766),
    ("walker2d", "expert"): (3.925096, 0.9708009),
}


def task_family(env_id: str) -> str:
    """``Hopper-v4`` -> ``hopper``, ``HalfCheetah-v4`` -> ``halfcheetah``."""
    return env_id.split("-")[0].lower()


def reference_returns(env_id: str) -> tuple[float, float] | None:
    """(random, expert) returns for ``env_id``, or ``None`` if D4RL has no reference for it."""
    return D4RL_REFERENCE.get(task_family(env_id))


def normalized_score(env_id: str, episode_return: float) -> float:
    """D4RL-normalised score x100; raises for tasks without references."""
    ref = reference_returns(env_id)
    if ref is None:
        raise ValueError(f"{env_id}: no D4RL reference returns (known: {sorted(D4RL_REFERENCE)})")
    low, high = ref
    return 100.0 * (episode_return - low) / (high - low)
