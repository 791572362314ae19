"""``unio4 train online`` (unio4/commands/train_online.py): resume and ``--seed``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unio4.cli import main


def test_train_online_cli_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "train",
        "online",
        "--num-envs",
        "8",
        "--iterations",
        "2",
        "--out",
        str(tmp_path),
        "--set",
        "train.ppo.num_steps=8",
        "--set",
        "train.save_interval=1",
    ]
    assert main(args) == 0
    assert (tmp_path / "checkpoints" / "final.pt").is_file()
    assert main([*args[:5], "4", *args[6:], "--resume"]) == 0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # 2 iterations, then 2 more after resuming (not 4 new ones)
    assert "final reward/step" in capsys.readouterr().out


def test_seed_seeds_the_learner_and_the_robots(tmp_path: Path) -> None:
    """``--seed`` alone gives a different run (it once only seeded the robots' constructor, which the
    learner's seeded reset then overrode); the same seed repeats it exactly."""
    import yaml

    def run(seed: int, out: str) -> list[float]:
        argv = ["train", "online", "--num-envs", "4", "--iterations", "1", "--seed", str(seed), "--out", str(tmp_path / out)]
        assert main([*argv, "--set", "train.ppo.num_steps=8"]) == 0
        assert yaml.safe_load((tmp_path / out / "run.yaml").read_text())["configs"]["train"]["seed"] == seed
        return [float(x) for x in re.findall(r'"reward/step": (-?[0-9.e-]+)', (tmp_path / out / "metrics.jsonl").read_text())]

    assert run(1, "a") == run(1, "b") != run(2, "c")
