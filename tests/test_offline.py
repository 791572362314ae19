"""Uni-O4's offline phase: critics, dynamics ensemble, AM-Q, OPE-gated improvement, resume."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest
import torch

from unio4.configs.loader import from_dict
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.data.dataset import Dataset
from unio4.learning.export import actor_from_checkpoint
from unio4.learning.offline.bc import ActorEnsemble, make_actor
from unio4.learning.offline.critics import CriticConfig, CriticTrainer, expectile_loss, monte_carlo_returns
from unio4.learning.offline.dynamics import DynamicsConfig, DynamicsTrainer
from unio4.learning.offline.improvement import ImprovementConfig, ImprovementTrainer, clip_per_member
from unio4.learning.offline.ope import AMQ, OPEConfig
from unio4.learning.offline.pipeline import OfflineConfig, train_offline
from unio4.learning.online.runner import OnlineConfig, build_agent, load_init
from unio4.learning.policy import GaussianActor, NetworkConfig

NET = NetworkConfig(actor_hidden=(32, 32), critic_hidden=(32, 32), activation="relu", init_std=0.5)


def constant_dataset(n: int, timeouts: bool) -> Dataset:
    """One state, reward 1, every transition ends its episode (by time-out or by terminal)."""
    obs = torch.zeros(n, 2)
    ends = torch.ones(n, dtype=torch.bool)
    none = torch.zeros(n, dtype=torch.bool)
    return Dataset(obs, torch.zeros(n, 1), torch.ones(n), none if timeouts else ends, ends if timeouts else none, obs.clone())


def bandit(n: int = 4000, seed: int = 0) -> Dataset:
    """One-step episodes: a ~ U(-1, 1), reward 1 - (a - 0.5)^2; the best action is 0.5, BC's mean is 0."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 2, generator=g)
    actions = torch.rand(n, 1, generator=g) * 2 - 1
    rewards = 1 - (actions[:, 0] - 0.5).square()
    ends = torch.ones(n, dtype=torch.bool)
    return Dataset(obs, actions, rewards, ends, torch.zeros(n, dtype=torch.bool), obs + 0.1 * actions)


def confounded_bandit(n: int = 4000, seed: int = 0) -> Dataset:
    """One-step episodes of an optimal expert that sees the true state ``s ~ N(0, 1)`` while the logged
    observation is ``o = s + N(0, 1)`` (a robot's noisy, partial view): ``a = s + N(0, 0.1^2)``, reward
    ``s - (a - s)^2``. Logged critic observation ``[o, s]``. Given ``o``, the action tells Q the state, so
    ``Q(o, a)`` rises with ``a`` although raising the action only costs reward."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, 1, generator=g)
    o = s + torch.randn(n, 1, generator=g)
    actions = s + 0.1 * torch.randn(n, 1, generator=g)
    rewards = s[:, 0] - (actions[:, 0] - s[:, 0]).square()
    critic = torch.cat([o, s], 1)
    infos = {"critic_observations": critic, "next_critic_observations": critic.clone()}
    return Dataset(o, actions, rewards, torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool), o.clone(), infos=infos)


def test_expectile_loss_values() -> None:
    diff = torch.tensor([1.0, -2.0])
    assert expectile_loss(diff, 0.7).item() == pytest.approx((0.7 * 1 + 0.3 * 4) / 2)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (1 + 4) / 2)
    # the expectile of a sample sits above its mean for w > 0.5: gradient at the mean pushes V up
    v = torch.zeros((), requires_grad=True)
    expectile_loss(torch.tensor([-1.0, 1.0]) - v, 0.9).backward()
    assert v.grad is not None and v.grad.item() < 0


def test_monte_carlo_returns_restart_at_episode_ends() -> None:
    rewards = torch.tensor([1.0, 1.0, 1.0, 2.0, 2.0])
    ends = torch.tensor([False, False, True, False, True])
    expected = [1 + 0.5 + 0.25, 1 + 0.5, 1.0, 2 + 1.0, 2.0]
    assert monte_carlo_returns(rewards, ends, 0.5).tolist() == pytest.approx(expected)


@pytest.mark.parametrize(("bootstrap", "expected"), [(True, 2.0), (False, 1.0)])
def test_time_outs_bootstrap_and_terminals_do_not(bootstrap: bool, expected: float) -> None:
    """Reward 1 forever, cut by time-outs: V = 1 / (1 - gamma) = 2 if time-outs bootstrap, 1 if treated as terminals."""
    cfg = CriticConfig(
        steps=0, batch_size=64, lr=3e-3, gamma=0.5, tau=0.05, target_update_every=1, q_hidden=(32, 32), bootstrap_timeouts=bootstrap
    )
    trainer = CriticTrainer(constant_dataset(256, timeouts=True), cfg, NET, seed=0)
    for _ in range(1500):
        trainer.step()
    with torch.no_grad():
        v = trainer.critics.v(torch.zeros(1, 2)).item()
        q = trainer.critics.q_min(torch.zeros(1, 2), torch.zeros(1, 1)).item()
    assert v == pytest.approx(expected, abs=0.1)
    assert q == pytest.approx(expected, abs=0.1)


def test_true_terminals_never_bootstrap() -> None:
    cfg = CriticConfig(steps=0, batch_size=64, lr=3e-3, gamma=0.5, tau=0.05, target_update_every=1, q_hidden=(32, 32))
    trainer = CriticTrainer(constant_dataset(256, timeouts=False), cfg, NET, seed=0)
    for _ in range(1500):
        trainer.step()
    with torch.no_grad():
        assert trainer.critics.v(torch.zeros(1, 2)).item() == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sarsa_critic_values_the_behaviour_policy(precision: Literal["fp32", "bf16"]) -> None:
    """Bandit: Q(s, a) = r(a); V = E_behaviour[r] = 1 - E[(a - 0.5)^2] = 1 - (1/3 + 0.25), in either precision."""
    cfg = CriticConfig(mode="sarsa", steps=0, batch_size=256, lr=3e-3, q_hidden=(64, 64), precision=precision)
    trainer = CriticTrainer(bandit(), cfg, NET, seed=0)
    for _ in range(1500):
        trainer.step()
    with torch.no_grad():
        obs = torch.randn(256, 2)
        v = trainer.critics.v(obs).mean().item()
        q_best = trainer.critics.q_min(obs, torch.full((256, 1), 0.5)).mean().item()
    assert v == pytest.approx(1 - (1 / 3 + 0.25), abs=0.05)
    assert q_best == pytest.approx(1.0, abs=0.05)


def linear_system(n: int = 3000, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 3, generator=g)
    actions = torch.rand(n, 2, generator=g) * 2 - 1
    nxt = obs + 0.1 * torch.cat([actions, actions[:, :1]], -1) + 0.01 * torch.randn(n, 3, generator=g)
    rewards = (obs[:, :2] * actions).sum(-1)
    terminals = nxt[:, 0] > 1.5
    timeouts = torch.zeros(n, dtype=torch.bool)
    timeouts[-1] = not bool(terminals[-1])
    return Dataset(obs, actions, rewards, terminals, timeouts, nxt)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_dynamics_ensemble_learns_elites_and_termination(precision: Literal["fp32", "bf16"]) -> None:
    """The model, its elites and the learned termination are right when trained in either precision."""
    data = linear_system()
    cfg = DynamicsConfig(
        members=4, elites=2, hidden=(64, 64), weight_decay=(2.5e-5, 5e-5, 1e-4), max_epochs=40, max_holdout=500, precision=precision
    )
    trainer = DynamicsTrainer(data, cfg, seed=0)
    assert trainer.model.termination == "learned"  # the data has terminals and no known task
    before = trainer.holdout_mse()
    while not trainer.done:
        trainer.step()
    model = trainer.finish()
    after = trainer.holdout_mse()
    assert float(after.max()) < 0.1 * float(before.min())
    assert sorted(model.elite_index.tolist()) == sorted(after.argsort()[:2].tolist())
    obs, actions = data.observations[:500], data.actions[:500]
    next_obs, reward, done = model.step(obs, actions, torch.Generator().manual_seed(0))
    assert float((next_obs - data.next_observations[:500]).abs().mean()) < 0.05
    assert float((reward - data.rewards[:500]).abs().mean()) < 0.1  # rewards spread over [-3, 3]
    truth = next_obs[:, 0] > 1.5
    assert float((done == truth).float().mean()) > 0.95
    # the elites agree where the data went and disagree where it did not (actions 4x past its range)
    *_, inside = model.step_with_disagreement(obs, actions, torch.Generator().manual_seed(0))
    *_, outside = model.step_with_disagreement(obs, 4 * actions, torch.Generator().manual_seed(0))
    assert float(outside.mean()) > 2 * float(inside.mean())


def test_known_termination_rule_is_used_for_hopper() -> None:
    data = linear_system()
    data.metadata["env"] = "Hopper-v4"
    model = DynamicsTrainer(data, DynamicsConfig(members=2, elites=1, hidden=(8,), weight_decay=(0.0, 0.0)), seed=0).model
    assert model.termination == "hopper" and model.done_head is None
    healthy = torch.tensor([[1.25, 0.0, 0.1]])
    fallen = torch.tensor([[0.6, 0.0, 0.1]])
    tilted = torch.tensor([[1.25, 0.3, 0.1]])
    assert model.is_done(torch.cat([healthy, fallen, tilted])).tolist() == [False, True, True]


def ensemble_of(n: int, seed: int = 0) -> ActorEnsemble:
    torch.manual_seed(seed)
    return ActorEnsemble([make_actor(2, 1, 1.0, NET) for _ in range(n)])


def mean_action_score(target: float) -> Callable[[ActorEnsemble], torch.Tensor]:
    """A real, policy-dependent score: how close each member's mean action is to ``target``."""
    states = torch.randn(128, 2, generator=torch.Generator().manual_seed(1))

    def score(policies: ActorEnsemble) -> torch.Tensor:
        with torch.no_grad():
            mean, _ = policies(states)
        return -(mean - target).square().mean((1, 2))

    return score


def test_ope_acceptance_moves_only_the_members_that_improved() -> None:
    data = bandit(512)
    critics = CriticTrainer(data, CriticConfig(steps=0, q_hidden=(16,)), NET, seed=0).critics
    scorer = mean_action_score(0.5)
    trainer = ImprovementTrainer(data, ensemble_of(3), critics, scorer, ImprovementConfig(steps=10), seed=0)  # type: ignore[arg-type]
    behaviour_before = copy.deepcopy(trainer.behaviour.state_dict()["params"])
    best_before = trainer.best.clone()
    # member 0 moves towards the target (better), member 1 away (worse), member 2 stays (not strictly better)
    with torch.no_grad():
        bias = trainer.learner.params["mean_head.0.bias"]
        bias[0] += 0.3
        bias[1] -= 0.3
    stats = trainer.evaluate()
    assert stats["accepted"] == 1.0
    assert torch.equal(trainer.last, scorer(trainer.learner))  # the learners' latest scores, accepted or not
    assert trainer.accepted.tolist() == [1, 0, 0]
    after = trainer.behaviour.state_dict()["params"]
    assert not torch.equal(after["mean_head.0.bias"][0], behaviour_before["mean_head.0.bias"][0])
    assert torch.equal(after["mean_head.0.bias"][0], trainer.learner.params["mean_head.0.bias"][0])
    for k, v in behaviour_before.items():
        assert torch.equal(after[k][1:], v[1:]), k
    assert trainer.best[0] > best_before[0] and torch.equal(trainer.best[1:], best_before[1:])


class LineWorld:
    """A known model for AM-Q's arithmetic: the state moves by the action and the episode ends past 1."""

    def step_with_disagreement(
        self, obs: torch.Tensor, actions: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        next_obs = obs + actions
        return next_obs, torch.zeros(len(obs)), next_obs[:, 0].abs() > 1.0, actions.abs().mean(-1)  # "disagreement": |a|

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.ones(obs.shape[:-1])


@pytest.mark.parametrize(("terminal", "expected"), [("drop", [1.0, 1.0]), ("zero", [1.0, 0.4])])
def test_amq_terminal_modes(terminal: str, expected: list[float]) -> None:
    """Member 0 stands still; member 1 moves 0.6 per step and its rollouts end after 2 of 5 steps. With
    the paper's ``drop`` both score the mean Q of their live steps, so the fall is invisible; with
    ``zero`` the ended steps count as Q = 0."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"][0] = 0.0
        policies.params["mean_head.0.bias"][1] = math.atanh(0.6)
    world = LineWorld()
    amq = AMQ(torch.zeros(64, 2), world, world, OPEConfig(horizon=5, states=16, terminal=terminal))  # type: ignore[arg-type]
    assert amq(policies).tolist() == pytest.approx(expected, abs=1e-5)
    # the disagreement is averaged over live steps only: member 1's two steps before its fall
    assert amq.last_disagreement.tolist() == pytest.approx([0.0, 0.6], abs=1e-5)


class EagerLineWorld(LineWorld):
    """LineWorld whose Q rewards moving right: a policy that moves looks better at every state it survives."""

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return 1.0 + actions[..., 0]


@pytest.mark.parametrize(("fraction", "expected"), [(0.0, [1.0, 1.5]), (0.5, [1.0, 1.125]), (1.0, [1.0, 0.75])])
def test_amq_initial_fraction_sees_a_fall_from_the_reset_states(fraction: float, expected: list[float]) -> None:
    """The data's states sit at x = 0 except its episodes' first states (reset states, 1 row in 64) at
    x = 0.9. Member 1 moves 0.5 per step and Q favours that: from x = 0 it survives the 2-step horizon
    and scores 1.5; from a reset it falls after one step and scores 1.5 / 2. Drawn from all rows
    (fraction 0) the 16 start states miss the resets and rank member 1 above member 0 (Q 1 everywhere);
    drawn from the episode starts it ranks below, as its true return would."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"][0] = 0.0
        policies.params["mean_head.0.bias"][1] = math.atanh(0.5)
    data, starts = torch.zeros(512, 2), torch.arange(0, 512, 64)
    data[starts] = 0.9
    world = EagerLineWorld()
    cfg = OPEConfig(horizon=2, states=16, terminal="zero", initial_fraction=fraction, seed=2)
    amq = AMQ(data, world, world, cfg, episode_starts=starts)  # type: ignore[arg-type]
    initial = round(fraction * 16)
    assert bool((amq.start[:initial] == 0.9).all()) and not bool((amq.start[initial:] == 0.9).any())
    assert amq(policies).tolist() == pytest.approx(expected, abs=1e-5)
    if fraction:
        with pytest.raises(ValueError, match="episode starts"):
            AMQ(data, world, world, cfg)  # type: ignore[arg-type]


class RunawayWorld:
    """A model that feeds on its own errors: the state doubles every step (plus ``gain`` x the action);
    the rollout ends where ``|x| > 1`` unless ``ends`` is off. Its "disagreement" is the size of the
    predicted state, so it tells how far the rollout ran."""

    def __init__(self, gain: float, ends: bool) -> None:
        self.gain, self.ends = gain, ends

    def step_with_disagreement(
        self, obs: torch.Tensor, actions: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        next_obs = 2.0 * obs + self.gain * actions
        done = (next_obs[:, 0].abs() > 1.0) & self.ends
        return next_obs, torch.zeros(len(obs)), done, next_obs.abs().mean(-1)

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.ones(obs.shape[:-1])


def test_amq_clip_states_keeps_a_runaway_model_inside_the_data() -> None:
    """Without the clip the doubling model's 40-step rollouts leave the data's [-1, 1] box by a factor
    of about 1e11 (the drift diagnostic becomes meaningless); with it every state stays in the box."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"].zero_()
    data = torch.linspace(-1.0, 1.0, 64).unsqueeze(-1).expand(64, 2)
    spread = {}
    for clip in (False, True):
        amq = AMQ(data, RunawayWorld(0.0, ends=False), RunawayWorld(0.0, ends=False), OPEConfig(horizon=40, states=16, clip_states=clip))  # type: ignore[arg-type]
        assert amq(policies).tolist() == pytest.approx([1.0, 1.0])
        spread[clip] = amq.last_disagreement
    assert bool((spread[False] > 1e6).all())
    assert bool((spread[True] <= 2.0).all())  # a state in the box predicts at most 2x its size


def test_amq_clip_states_still_sees_a_fall_predicted_outside_the_data() -> None:
    """The termination rule reads the model's unclipped prediction: member 1's first step lands at
    1.2, outside both the fall limit and the data (all zeros), and its rollouts end there, as without
    the clip; clipping first would have put it back at 0 and hidden the fall."""
    policies = ensemble_of(2)
    with torch.no_grad():
        policies.params["mean_head.0.weight"].zero_()
        policies.params["mean_head.0.bias"][0] = 0.0
        policies.params["mean_head.0.bias"][1] = math.atanh(0.6)
    world = RunawayWorld(2.0, ends=True)
    for clip in (False, True):
        amq = AMQ(torch.zeros(64, 2), world, world, OPEConfig(horizon=5, states=16, terminal="zero", clip_states=clip))  # type: ignore[arg-type]
        assert amq(policies).tolist() == pytest.approx([1.0, 0.2], abs=1e-5), clip


def test_per_member_gradient_clipping_leaves_small_members_alone() -> None:
    p = torch.zeros(2, 3, requires_grad=True)
    p.grad = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.0, 0.4]])
    norms = clip_per_member([p], 1.0)
    assert norms.tolist() == pytest.approx([5.0, 0.5])
    assert p.grad.tolist() == [pytest.approx([0.6, 0.8, 0.0], abs=1e-6), pytest.approx([0.3, 0.0, 0.4])]


def tiny_config(**overrides: object) -> OfflineConfig:
    cfg: dict[str, object] = {
        "checkpoint_interval": 50,
        "log_interval": 50,
        "critics": {"steps": 400, "batch_size": 256, "lr": 3e-3, "q_hidden": [64, 64]},
        "bc": {"members": 3, "steps": 300, "batch_size": 256, "lr": 3e-3, "network": {"actor_hidden": [32, 32], "critic_hidden": [32, 32]}},
        "dynamics": {"members": 3, "elites": 2, "hidden": [32, 32], "weight_decay": [2.5e-5, 5e-5, 1e-4], "max_epochs": 3},
        "ope": {"horizon": 5, "states": 128},
        "improvement": {"steps": 300, "batch_size": 256, "lr": 1e-3, "ope_interval": 50},
    }
    cfg.update(overrides)
    return from_dict(OfflineConfig, cfg)


def bc_member(state: dict[str, Any], member: int, bound: float) -> GaussianActor:
    """BC member ``member`` of an offline checkpoint (its ``bc_ensemble``) as a standalone actor."""
    template = make_actor(state["obs_dim"], state["act_dim"], bound, from_dict(NetworkConfig, state["network"]))
    size = len(next(iter(state["bc_ensemble"]["params"].values())))
    ensemble = ActorEnsemble([template] * size)
    ensemble.load_state_dict(state["bc_ensemble"])
    return ensemble.member(member, template)


def test_offline_phase_improves_on_behaviour_cloning(tmp_path: Path) -> None:
    """On the bandit, BC imitates a ~ U(-1, 1) (mean ~0); Uni-O4 must move the policy towards 0.5, accepted by OPE."""
    data = bandit()
    result = train_offline(data, tiny_config(), tmp_path, show_progress=False)
    state = load_checkpoint(result.checkpoint)
    actor = actor_from_checkpoint(state, "offline.pt")
    obs = torch.randn(512, 2)
    with torch.no_grad():
        improved = actor(obs)[0].mean().item()
    bc_actor = bc_member(state, result.member, 1.0)
    with torch.no_grad():
        cloned = bc_actor(obs)[0].mean().item()
    assert abs(cloned) < 0.15
    assert abs(improved - 0.5) < 0.5 * abs(cloned - 0.5), (cloned, improved)
    assert result.accepted[result.member] >= 1
    assert result.ope_best[result.member] > result.ope_initial[result.member]
    assert (tmp_path / "offline_curves.png").is_file() and (tmp_path / "metrics.jsonl").is_file()
    assert list((tmp_path / "tb").iterdir())


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    data = bandit(1500)
    cfg = tiny_config(checkpoint_interval=7)
    full = train_offline(data, cfg, tmp_path / "full", show_progress=False)
    # interrupted in the critics stage, then in the improvement stage, then finished
    first = train_offline(data, cfg, tmp_path / "resumed", show_progress=False, stop_after=123)
    assert first.member == -1 and not (tmp_path / "resumed" / "checkpoints" / "offline.pt").exists()
    assert train_offline(data, cfg, tmp_path / "resumed", resume=True, show_progress=False, stop_after=800).member == -1
    resumed = train_offline(data, cfg, tmp_path / "resumed", resume=True, show_progress=False)
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    for part in ("actor", "critic"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert a["ope_best"] == b["ope_best"] and a["accepted"] == b["accepted"]


def test_online_phase_starts_from_exactly_the_offline_policy_and_value(tmp_path: Path) -> None:
    result = train_offline(bandit(1000), tiny_config(), tmp_path, show_progress=False)
    state = load_checkpoint(result.checkpoint)
    init, cfg = load_init(result.checkpoint, OnlineConfig())

    class Env:  # only the shapes matter to build_agent
        num_obs = num_critic_obs = 2
        num_actions = 1
        single_action_space = type("Box", (), {"high": [1.0]})()

    actor, critic = build_agent(Env(), cfg)  # type: ignore[arg-type]
    actor.load_state_dict(init["actor"])
    critic.load_state_dict(init["critic"])
    offline = actor_from_checkpoint(state, "offline.pt")
    obs = torch.randn(64, 2) * 3
    with torch.no_grad():
        assert torch.equal(actor(obs)[0], offline(obs)[0]) and torch.equal(actor(obs)[1], offline(obs)[1])
    assert bool(actor.normalizer.frozen) and bool(critic.normalizer.frozen)
    before = actor.normalizer.mean.clone()
    actor.normalizer.update(obs)
    assert torch.equal(actor.normalizer.mean, before)  # dataset statistics stay frozen online


TINY_CLI = [
    "--set", "train.critics.steps=200", "--set", "train.critics.q_hidden=[32,32]",
    "--set", "train.bc.steps=200", "--set", "train.bc.network.actor_hidden=[32,32]", "--set", "train.bc.network.critic_hidden=[32,32]",
    "--set", "train.dynamics.max_epochs=2", "--set", "train.dynamics.hidden=[32,32]", "--set", "train.dynamics.weight_decay=[0,0,0]",
    "--set", "train.ope.horizon=10", "--set", "train.ope.states=64", "--set", "train.improvement.steps=100",
]  # fmt: skip


def test_cli_offline_then_online_on_a_gymnasium_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Hopper data -> ``train offline`` -> ``train online --init``: the first online evaluation is the offline policy's."""
    from unio4.cli import main

    data = ["data", "generate", "--env", "Hopper-v4", "--level", "random", "--config", "tiny", "--cache-dir", str(tmp_path)]
    assert main([*data, "--set", "data.transitions=3000", "-o", str(tmp_path / "hr.h5")]) == 0
    offline = ["train", "offline", "--data", str(tmp_path / "hr.h5"), "--config", "uni_o4_offline_cpu", "--out", str(tmp_path / "off")]
    assert main([*offline, *TINY_CLI, "--env", "Hopper-v4", "--eval-episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "selected member" in out and "evaluation of the selected policy: return" in out
    offline_return = float(out.split("evaluation of the selected policy: return ")[1].split(",")[0])
    evaluation = json.loads((tmp_path / "off" / "evaluation.json").read_text())  # the same numbers, for tables
    assert evaluation["return"] == pytest.approx(offline_return, abs=0.05) and evaluation["episodes"] == 2
    seconds = json.loads((tmp_path / "off" / "diagnostics.json").read_text())["seconds"]
    assert set(seconds) == {"critics", "bc", "dynamics", "improvement"} and all(t > 0 for t in seconds.values())
    online = ["train", "online", "--env", "Hopper-v4", "--init", str(tmp_path / "off" / "checkpoints" / "offline.pt")]
    online += ["--out", str(tmp_path / "on"), "--iterations", "1", "--eval-episodes", "2", "--set", "train.ppo.num_steps=256"]
    threads = torch.get_num_threads()
    try:  # --threads: one torch thread, as for runs sharing a machine (two torch pools on two cores ran PPO 30x slower)
        assert main([*online, "--set", "train.ppo.epochs=2", "--set", "train.eval_interval=1", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    first_online = float(out.split("evaluation return: first ")[1].split(",")[0])
    assert first_online == pytest.approx(offline_return, abs=0.1)  # printed with one decimal
    assert (tmp_path / "on" / "curves.png").is_file() and (tmp_path / "on" / "checkpoints" / "final.pt").is_file()


def test_cli_bench_learning_prints_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    from unio4.cli import main

    args = ["bench", "learning", "--config", "uni_o4_offline_cpu", "--transitions", "3000", "--steps", "3", *TINY_CLI]
    assert main(args) == 0
    out = capsys.readouterr().out
    for stage in ("critics (iql", "BC ensemble, batched", "members one after another", "policy improvement"):
        assert stage in out
    assert "batched ensemble speed-up over sequential members:" in out and "AM-Q evaluation" in out


def test_go1_logs_offline_then_online_then_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Trot logs -> Uni-O4 offline (V on the privileged critic observations) -> PPO on the Go1 task -> bundle."""
    from unio4.cli import main

    assert main(["collect", "--num-envs", "8", "--steps", "100", "-o", str(tmp_path / "gait.h5")]) == 0
    offline = [
        "train",
        "offline",
        "--data",
        str(tmp_path / "gait.h5"),
        "--config",
        "uni_o4_offline_go1",
        "--out",
        str(tmp_path / "off"),
        "--sim-eval",
        "--eval-envs",
        "2",
        "--eval-seconds",
        "0.2",
    ]
    assert main([*offline, *TINY_CLI]) == 0
    # every candidate (BC members, accepted, learners) scored in the Go1 task the logs came from
    record = json.loads((tmp_path / "off" / "diagnostics.json").read_text())
    assert len(record["ope"]["returns"]) == 3 * 4 and all(math.isfinite(r) for r in record["ope"]["returns"])
    out = capsys.readouterr().out
    assert "evaluation of the selected policy in simulation: reward per step" in out
    assert "action coverage: " in out and "model disagreement along OPE rollouts" in out  # the Go1 preset's gate reads it
    assert 0 <= record["coverage"]["unexplained"] < 1
    assert math.isfinite(json.loads((tmp_path / "off" / "evaluation.json").read_text())["reward/step"])
    state = load_checkpoint(tmp_path / "off" / "checkpoints" / "offline.pt")
    assert state["critic"]["normalizer.mean"].shape[0] == 60 and state["obs_dim"] == 47  # asymmetric V, like the online critic
    ckpt = str(tmp_path / "off" / "checkpoints" / "offline.pt")
    online = ["train", "online", "--init", ckpt, "--config", "finetune_go1", "--num-envs", "4", "--iterations", "1"]
    assert main([*online, "--out", str(tmp_path / "on"), "--set", "train.ppo.num_steps=8"]) == 0
    assert main(["export", ckpt, "-o", str(tmp_path / "bundle")]) == 0
    assert (tmp_path / "bundle" / "policy.onnx").is_file()


def test_q_on_the_critic_state_does_not_follow_the_confounded_action(tmp_path: Path) -> None:
    """``q_observations``: with Q on the noisy policy observation the improvement raises the action
    (Q reads a high action as a good state) and loses reward; with Q on the logged critic state it does
    not. AM-Q's rollouts run in the critic state, the policies read its first columns."""
    data = confounded_bandit()
    obs, s = data.observations[:2000], data.infos["critic_observations"][:2000, 1:]

    def shift_and_reward(q_observations: str) -> tuple[float, float, float]:
        run = tmp_path / q_observations
        result = train_offline(data, tiny_config(q_observations=q_observations), run, show_progress=False)
        state = load_checkpoint(result.checkpoint)
        assert state["critics"]["q.normalizer.mean"].shape[0] == (2 if q_observations == "critic" else 1)
        bc = bc_member(state, result.member, state["action_bound"])
        with torch.no_grad():
            improved, cloned = actor_from_checkpoint(state, "offline.pt")(obs)[0], bc(obs)[0]
        reward = lambda a: float((s - (a - s).square()).mean())  # noqa: E731
        return float((improved - cloned).mean()), reward(cloned), reward(improved)

    shift_policy, bc_reward, policy_reward = shift_and_reward("policy")
    shift_critic, _, critic_reward = shift_and_reward("critic")
    assert shift_policy > 0.2 and policy_reward < bc_reward - 0.05, (shift_policy, bc_reward, policy_reward)
    assert abs(shift_critic) < 0.1 and critic_reward > bc_reward - 0.02, (shift_critic, bc_reward, critic_reward)


def test_q_on_the_critic_state_falls_back_and_refuses_a_narrow_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Logs without critic observations (robot logs) run on the policy's; ones narrower than the
    observation they must start with are refused, naming the field."""
    cfg = tiny_config(q_observations="critic", critics={"steps": 20}, bc={"steps": 20}, improvement={"steps": 10, "ope_interval": 5})
    result = train_offline(bandit(400), cfg, tmp_path / "plain", show_progress=False)
    assert "the data logged no critic observations" in capsys.readouterr().out
    assert load_checkpoint(result.checkpoint)["critics"]["q.normalizer.mean"].shape[0] == 2
    narrow = confounded_bandit(400)
    narrow.observations = torch.cat([narrow.observations] * 3, 1)
    narrow.next_observations = torch.cat([narrow.next_observations] * 3, 1)
    with pytest.raises(ValueError, match="infos/critic_observations: 2 values per row, fewer than the 3"):
        train_offline(narrow, cfg, tmp_path / "narrow", show_progress=False)


def test_train_offline_writes_the_diagnostics(tmp_path: Path) -> None:
    n = 600
    obs = torch.randn(n, 4)
    actions = torch.tanh(obs[:, :2])
    ends = torch.zeros(n, dtype=torch.bool)
    ends[99::100] = True
    data = Dataset(obs, actions, -((actions - obs[:, :2]) ** 2).sum(1), torch.zeros(n, dtype=torch.bool), ends, torch.roll(obs, -1, 0))
    scored = []

    def scorer(actors: list) -> list[float]:  # type: ignore[type-arg]
        scored.append(len(actors))
        return [float(i) for i in range(len(actors))]

    cfg = tiny_config()
    train_offline(data, cfg, tmp_path, online_scorer=scorer)
    record = json.loads((tmp_path / "diagnostics.json").read_text())
    assert set(record["critics"]) == {"within_state", "across_states", "ratio", "flat"}
    # the actions are a deterministic function of the state: one action per state
    assert record["coverage"]["narrow"] and 0 <= record["coverage"]["unexplained"] < 0.05
    # every candidate scored once: the BC members, the accepted behaviour policies and the final learners
    assert scored == [3 * cfg.bc.members] and len(record["ope"]["estimates"]) == 3 * cfg.bc.members
    assert record["ope"]["groups"] == ["bc", "behaviour", "learner"]
    drift = record["drift"]  # model disagreement along each candidate's OPE rollouts
    assert all(len(drift[g]) == cfg.bc.members and min(drift[g]) >= 0 for g in ("bc", "behaviour", "learner"))
    assert drift["ratio"] > 0 and isinstance(drift["extrapolating"], bool)
    assert -1.0 <= record["ope"]["spearman"] <= 1.0


def test_the_output_is_the_accepted_behaviour_or_the_final_learner(tmp_path: Path) -> None:
    """``output: learner`` returns the selected member's final learner (the authors' choice), chosen by
    the learners' last OPE scores; the default returns its last accepted behaviour policy."""
    data = bandit()
    # OPE every 40 steps of 300: the learners move after the last check, so learner != behaviour
    cfg = tiny_config(improvement={"steps": 300, "batch_size": 256, "lr": 1e-3, "ope_interval": 40})
    states = {}
    for output in ("behaviour", "learner"):
        result = train_offline(data, replace(cfg, output=output), tmp_path / output, show_progress=False)
        states[output] = load_checkpoint(result.checkpoint)
    for output, key, scores in (("behaviour", "policy_ensemble", "ope_best"), ("learner", "learner_ensemble", "ope_learner")):
        state = states[output]
        assert state["member"] == max(range(len(state[scores])), key=lambda i: state[scores][i])
        for name, value in state["actor"].items():
            stacked = {**state[key]["params"], **state[key]["buffers"]}[name]
            assert torch.equal(value, stacked[state["member"]]), (output, name)
    # the last OPE check is at the final step: a member whose final learner was accepted outputs the
    # same policy either way, one whose learner was refused keeps an older behaviour policy
    state = states["learner"]
    learner, behaviour = state["learner_ensemble"]["params"], state["policy_ensemble"]["params"]
    for i, (last, best) in enumerate(zip(state["ope_learner"], state["ope_best"])):
        assert all(torch.equal(learner[k][i], behaviour[k][i]) for k in learner) == (last == best)


def test_reuse_takes_the_stages_a_changed_setting_does_not_touch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ablation of the BC regulariser reuses the critics and dynamics of a finished run, retrains BC
    and the improvement; other data reuses nothing."""
    data = bandit()
    cfg = tiny_config()
    first = load_checkpoint(train_offline(data, cfg, tmp_path / "a", show_progress=False).checkpoint)
    state = tmp_path / "a" / "checkpoints" / "offline_state.pt"
    ablation = replace(cfg, bc=replace(cfg.bc, regularizer="kl"))
    second = load_checkpoint(train_offline(data, ablation, tmp_path / "b", show_progress=False, reuse=state).checkpoint)
    assert "reusing from" in capsys.readouterr().out
    for name, value in first["critics"].items():
        assert torch.equal(value, second["critics"][name]), name
    for name, value in first["dynamics"].items():
        assert torch.equal(value, second["dynamics"][name]), name
    bc_a, bc_b = first["bc_ensemble"]["params"], second["bc_ensemble"]["params"]
    assert any(not torch.equal(bc_a[k], bc_b[k]) for k in bc_a)
    other = bandit(512)
    with pytest.raises(ValueError, match="trained on other data"):
        train_offline(other, cfg, tmp_path / "c", show_progress=False, reuse=state)


def test_max_drift_refuses_learners_whose_rollouts_leave_the_data() -> None:
    """Every learner scores better by OPE; the one whose rollouts show 3x its BC member's model
    disagreement is refused with ``max_drift: 2``, and accepted without it (the paper's gate)."""
    data = bandit(512)
    critics = CriticTrainer(data, CriticConfig(steps=0, q_hidden=(16,)), NET, seed=0).critics
    calls = iter(range(100))

    def scorer(policies: ActorEnsemble) -> torch.Tensor:
        return torch.full((policies.size,), float(next(calls)))  # every call better than the last

    spread = {"now": torch.ones(3)}
    for max_drift, accepted in ((2.0, [1, 0, 1]), (None, [1, 1, 1])):
        cfg = ImprovementConfig(steps=10, max_drift=max_drift)
        spread["now"] = torch.ones(3)  # the BC members' rollouts
        trainer = ImprovementTrainer(data, ensemble_of(3), critics, scorer, cfg, seed=0, disagreement=lambda: spread["now"])  # type: ignore[arg-type]
        spread["now"] = torch.tensor([1.5, 3.0, 0.5])
        trainer.evaluate()
        assert trainer.accepted.tolist() == accepted, max_drift
    with pytest.raises(ValueError, match="max_drift needs"):
        ImprovementTrainer(data, ensemble_of(3), critics, scorer, ImprovementConfig(steps=10, max_drift=2.0), seed=0)  # type: ignore[arg-type]
