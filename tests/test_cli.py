"""Every subcommand has --help; the bench and the gait print real numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from unio4.cli import build_parser, main

COMMANDS = [[], ["sim"], ["sim", "bench"], ["sim", "gait"], ["train"], ["train", "online"], ["robot"], ["robot", "export"], ["demo"]]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "unio4")
def test_help_on_every_command(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: unio4" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    out = subprocess.run([Path(sys.executable).parent / "unio4", "--help"], capture_output=True, text=True, check=True).stdout
    assert "train" in out and "sim" in out


def test_sim_bench_prints_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "bench", "--num-envs", "16", "--steps", "10"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "mujoco" in line)
    numbers = [float(x.replace(",", "")) for x in re.findall(r"[\d,]+\.?\d*", row)]
    assert numbers[0] == 16 and all(n > 0 for n in numbers[1:4])


def test_robot_export_writes_loadable_models(tmp_path: Path) -> None:
    import mujoco

    assert main(["robot", "export", "--out", str(tmp_path)]) == 0
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "go1.xml"))
    assert model.nu == 12
    assert "<robot" in (tmp_path / "go1.urdf").read_text()


def test_train_online_cli_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "train",
        "online",
        "--num-envs",
        "8",
        "--iterations",
        "2",
        "--run-dir",
        str(tmp_path),
        "--train-set",
        "ppo.num_steps=8",
        "--train-set",
        "save_interval=1",
    ]
    assert main(args) == 0
    assert (tmp_path / "checkpoints" / "final.pt").is_file()
    assert main([*args[:5], "4", *args[6:], "--resume"]) == 0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # 2 iterations, then 2 more after resuming (not 4 new ones)
    assert "final reward/step" in capsys.readouterr().out
