"""The online training loop (learning/online/runner.py): the linear learning-rate decay's horizon and the
paper presets' switches (docs/uni-o4-fidelity.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unio4.configs.loader import load, resolve_config_path
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.online.ppo import PPOConfig
from unio4.learning.online.runner import OnlineConfig, train_online
from unio4.learning.policy import NetworkConfig

NET = NetworkConfig(actor_hidden=(16,), critic_hidden=(16,), init_std=0.3)


@pytest.mark.parametrize(("decay_samples", "expected"), [(None, 0.5), (1000, 1 - 64 / 1000)])
def test_the_linear_decay_spans_the_run_or_a_fixed_number_of_samples(tmp_path: Path, decay_samples: int | None, expected: float) -> None:
    """Two updates of 2 envs x 32 steps: before the second, the run is half over, and 64 samples are done."""
    from unio4.learning.online.gym_env import GymVectorEnv

    env = GymVectorEnv("InvertedPendulum-v4", 2, seed=0)
    ppo = PPOConfig(num_steps=32, epochs=1, num_minibatches=1, lr_schedule="fixed", actor_lr=1e-3, critic_lr=1e-3)
    decay = {"linear_lr_decay": True, "lr_decay_samples": decay_samples}
    cfg = OnlineConfig(iterations=2, save_interval=1, network=NET, ppo=ppo, reward_normalization="running", **decay)  # type: ignore[arg-type]
    train_online(env, cfg, tmp_path, show_progress=False)
    env.close()
    state = load_checkpoint(tmp_path / "checkpoints" / "final.pt")
    assert state["ppo"]["actor_optim"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * expected)
    assert state["reward_scaler"]["count"] == 2 * 32 * 2  # every env's every step, resumable


def test_the_paper_presets_switch_every_switchable_row() -> None:
    online = load(OnlineConfig, resolve_config_path("uni_o4_paper_online_hopper_medium", "train"), [])
    assert online.lr_decay_samples == 3_000_000 and online.ppo.advantage_normalization == "batch"
    assert online.reward_scale == pytest.approx(0.1) and online.network.obs_clip is None and online.ppo.value_clip == 0.05
    cheetah = load(OnlineConfig, resolve_config_path("uni_o4_paper_online_halfcheetah_medium", "train"), [])
    assert cheetah.reward_normalization == "running" and cheetah.reward_scale == 1.0
    assert np.isclose(online.iterations * online.ppo.num_steps, 3_000_000, rtol=1e-3)
