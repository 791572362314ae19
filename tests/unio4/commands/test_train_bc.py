"""``unio4 train bc`` (unio4/commands/train_bc.py): collect, clone and fine-tune from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from unio4.cli import main


def test_collect_bc_and_fine_tune_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, bc = str(tmp_path / "gait.h5"), str(tmp_path / "bc.pt")
    assert main(["collect", "--num-envs", "4", "--steps", "30", "-o", data]) == 0
    assert "120 transitions, 4 episodes" in capsys.readouterr().out
    assert main(["train", "bc", "--data", data, "--set", "train.steps=5", "-o", bc]) == 0
    args = ["train", "online", "--num-envs", "4", "--iterations", "1", "--out", str(tmp_path / "ppo"), "--init", bc]
    assert main([*args, "--config", "finetune_go1", "--set", "train.ppo.num_steps=8"]) == 0
    assert (tmp_path / "ppo" / "checkpoints" / "final.pt").is_file()
    # A dataset that is not one is refused in one line, naming the file.
    (tmp_path / "junk.h5").write_text("junk")
    assert main(["train", "bc", "--data", str(tmp_path / "junk.h5"), "-o", bc]) == 2
    assert "junk.h5: not a readable HDF5 dataset" in capsys.readouterr().err
