"""Uni-O4's offline phase end to end (learning/offline/pipeline.py): improvement over BC, resume, the
hand-over to the online phase, Q on the critic state, diagnostics, the output policy, reuse of stages."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.learning.offline.conftest import bandit
from unio4.configs.loader import from_dict, to_dict
from unio4.learning.checkpoint import load_checkpoint
from unio4.learning.data.dataset import Dataset
from unio4.learning.export import actor_from_checkpoint
from unio4.learning.offline.bc import ActorEnsemble, make_actor
from unio4.learning.offline.pipeline import OfflineConfig, reusable_stages, train_offline
from unio4.learning.online.runner import OnlineConfig, build_agent, load_init
from unio4.learning.policy import GaussianActor, NetworkConfig


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


def test_reuse_reads_an_older_runs_missing_options_as_their_defaults() -> None:
    """A run saved before an option existed is reused where the option's default is the setting now;
    a set option that the old run cannot have had still retrains its stages."""
    cfg = tiny_config()
    stored = to_dict(cfg)
    del stored["q_observations"], stored["bc"]["init"]  # options the older run did not know
    state = {"dataset_digest": "d", "config": stored, "done": {stage: {} for stage in ("critics", "bc", "dynamics", "improvement")}}
    assert list(reusable_stages(state, cfg, "d", "old")) == ["critics", "bc", "dynamics", "improvement"]
    initialised = replace(cfg, bc=replace(cfg.bc, init="walker.pt"))
    assert list(reusable_stages(state, initialised, "d", "old")) == ["critics", "dynamics"]


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
