"""Run directories (learning/run_dir.py): runs never mix, ``--resume`` continues one, run.yaml records it."""

from __future__ import annotations

from pathlib import Path

import pytest

from unio4.cli import main


def test_runs_never_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second run into a used run dir is refused; --resume needs a checkpoint; run.yaml records the run."""
    import yaml

    run = tmp_path / "run"
    argv = ["train", "online", "--num-envs", "2", "--iterations", "1", "--set", "train.ppo.num_steps=4", "--out", str(run)]
    assert main([*argv, "--resume"]) == 2
    assert "--resume, but there is no checkpoints/latest.pt to continue from" in capsys.readouterr().err
    assert main(argv) == 0
    record = yaml.safe_load((run / "run.yaml").read_text())
    assert record["configs"]["train"]["ppo"]["num_steps"] == 4 and record["configs"]["task"]["robot"] == "go1"
    assert "commit" in record["git"] and record["version"]
    steps = [line for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert main(argv) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert (run / "metrics.jsonl").read_text().splitlines() == steps  # nothing appended
    assert main([*argv[:-4], "--iterations", "2", "--set", "train.ppo.num_steps=4", "--out", str(run), "--resume"]) == 0
    assert any(p.name.startswith("run.resumed-") for p in run.iterdir())
