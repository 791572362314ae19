"""Settings shared by the command tests."""

from __future__ import annotations

TINY_CLI = [
    "--set", "train.critics.steps=200", "--set", "train.critics.q_hidden=[32,32]",
    "--set", "train.bc.steps=200", "--set", "train.bc.network.actor_hidden=[32,32]", "--set", "train.bc.network.critic_hidden=[32,32]",
    "--set", "train.dynamics.max_epochs=2", "--set", "train.dynamics.hidden=[32,32]", "--set", "train.dynamics.weight_decay=[0,0,0]",
    "--set", "train.ope.horizon=10", "--set", "train.ope.states=64", "--set", "train.improvement.steps=100",
]  # fmt: skip
