"""``unio4 train offline`` (unio4/commands/train_offline.py), then ``train online --init``: on a gymnasium task
and on Go1 logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.unio4.commands.conftest import TINY_CLI
from unio4.learning.checkpoint import load_checkpoint


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
