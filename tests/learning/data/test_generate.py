"""``unio4 data generate``: D4RL-style datasets from SAC behaviour policies on Gymnasium MuJoCo tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unio4.cli import main
from unio4.learning.data.dataset import load_dataset


def episodes(data_path: Path) -> list[tuple[int, int]]:
    data = load_dataset(data_path)
    ends = data.episode_ends().tolist()
    starts = [0, *[e + 1 for e in ends[:-1]]]
    return list(zip(starts, ends))


def test_generate_medium_and_replay_from_one_sac_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    common = ["--env", "Hopper-v4", "--config", "tiny", "--cache-dir", str(work)]
    medium = [*common, "--level", "medium", "--set", "data.transitions=5000"]
    assert main(["data", "generate", *medium, "-o", str(tmp_path / "m.h5")]) == 0
    data = load_dataset(tmp_path / "m.h5")
    assert len(data) == 5000
    assert data.metadata["env"] == "Hopper-v4" and data.metadata["level"] == "medium"
    assert data.metadata["medium_policy"]["sac_steps"] == 2000  # the tiny preset's cap, threshold not reached
    # rows are episode-contiguous: inside an episode the next observation is the next row's observation
    for start, end in episodes(tmp_path / "m.h5")[:20]:
        assert torch.equal(data.next_observations[start:end], data.observations[start + 1 : end + 1])
    # Hopper ends by falling (terminal) or at 1000 steps (time-out); the final episode is cut by the size limit
    lengths = [end - start + 1 for start, end in episodes(tmp_path / "m.h5")]
    assert max(lengths) <= 1000 and bool(data.terminals.any())
    # actions are sampled, not the deterministic mean: the same state never maps to one action
    assert float(data.actions.std(0).min()) > 0.05
    # the same file again, now from the cached policy (no SAC training before collection in this call)
    torch.manual_seed(1234)  # whatever state torch's generator is in, collection seeds its own
    assert main(["data", "generate", *medium, "-o", str(tmp_path / "m2.h5")]) == 0
    assert torch.equal(load_dataset(tmp_path / "m2.h5").actions, data.actions)

    # medium-replay reuses the cached SAC run: its replay buffer up to the medium snapshot
    assert main(["data", "generate", *common, "--level", "medium-replay", "-o", str(tmp_path / "mr.h5")]) == 0
    replay = load_dataset(tmp_path / "mr.h5")
    assert len(replay) == 2000 and replay.metadata["level"] == "medium-replay"
    assert bool(replay.timeouts[-1] | replay.terminals[-1])

    # a D4RL-sized medium-replay pools further SAC runs (here seed 1), each up to its own medium point
    sized = [*common, "--level", "medium-replay", "--set", "data.replay_transitions.hopper=3000"]
    assert main(["data", "generate", *sized, "-o", str(tmp_path / "mr5k.h5")]) == 0
    pooled = load_dataset(tmp_path / "mr5k.h5")
    assert len(pooled) == 3000 and len(pooled.metadata["replay_runs"]) == 2
    assert torch.equal(pooled.observations[:2000], replay.observations)  # the first run's buffer first
    ends = set(pooled.episode_ends().tolist())
    assert {1999, 2999} <= ends  # every run's buffer, and the size cut, end an episode
    assert not torch.equal(pooled.actions[2000:2100], pooled.actions[:100])  # another seed, not a copy
    cached = (work / "replay-seed1" / "medium-replay.h5").stat().st_mtime_ns
    assert main(["data", "generate", *sized, "-o", str(tmp_path / "again.h5")]) == 0
    assert (work / "replay-seed1" / "medium-replay.h5").stat().st_mtime_ns == cached  # runs are cached
    assert torch.equal(load_dataset(tmp_path / "again.h5").actions, pooled.actions)
    capped = [*sized, "--set", "data.max_replay_runs=1", "-o", str(tmp_path / "capped.h5")]
    assert main(["data", "generate", *capped]) == 2
    assert "need more than max_replay_runs=1 SAC runs (2000 from 1)" in capsys.readouterr().err
    assert not (tmp_path / "capped.h5").exists()


def test_random_level_and_bad_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["data", "generate", "--env", "Hopper-v4", "--config", "tiny", "--cache-dir", str(tmp_path), "--set", "data.transitions=3000"]
    assert main([*args, "--level", "random", "-o", str(tmp_path / "r.h5")]) == 0
    data = load_dataset(tmp_path / "r.h5")
    assert len(data) == 3000 and float(data.actions.abs().max()) <= 1.0
    assert main([*args, "--level", "amateur", "-o", str(tmp_path / "x.h5")]) == 2
    assert "--level: expected one of" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    assert main([*args, "--level", "random", "--set", "data.replay_transitions.ant=5", "-o", str(tmp_path / "x.h5")]) == 2
    assert "replay_transitions: unknown task 'ant'" in capsys.readouterr().err
    assert main([*args, "--level", "random", "--set", "data.replay_transitions.hopper=0", "-o", str(tmp_path / "x.h5")]) == 2
    assert "replay_transitions: expected a value >= 1" in capsys.readouterr().err


def test_medium_expert_concatenates_both_policies(tmp_path: Path) -> None:
    args = ["data", "generate", "--env", "Hopper-v4", "--config", "tiny", "--cache-dir", str(tmp_path), "--set", "data.transitions=2000"]
    assert main([*args, "--level", "medium-expert", "-o", str(tmp_path / "me.h5")]) == 0
    data = load_dataset(tmp_path / "me.h5")
    assert len(data) == 4000
    assert data.metadata["medium_policy"]["sac_steps"] == 2000 and data.metadata["expert_policy"]["sac_steps"] == 3000
    assert bool(data.timeouts[1999] | data.terminals[1999])  # the medium half ends an episode before the expert half
    assert (tmp_path / "medium.pt").is_file() and (tmp_path / "expert.pt").is_file()
