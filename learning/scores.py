"""D4RL normalised scores: ``100 (R - R_random) / (R_expert - R_random)`` with D4RL v2 references."""

from __future__ import annotations

# (random, expert) episode returns of D4RL v2, keyed by the Gymnasium task family.
D4RL_REFERENCE: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
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
