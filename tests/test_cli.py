"""Every subcommand has --help; the bench and the gait print real numbers."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unio4.cli import build_parser, main


def all_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command path of the parser, walked from its subparsers (so none can be forgotten)."""
    found = [list(prefix)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += all_commands(sub, (*prefix, name))
    return found


COMMANDS = all_commands(build_parser())


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


def test_collect_bc_and_fine_tune_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, bc = str(tmp_path / "gait.h5"), str(tmp_path / "bc.pt")
    assert main(["collect", "--num-envs", "4", "--steps", "30", "-o", data]) == 0
    assert "120 transitions, 4 episodes" in capsys.readouterr().out
    assert main(["train", "bc", "--data", data, "--train-set", "steps=5", "-o", bc]) == 0
    args = ["train", "online", "--num-envs", "4", "--iterations", "1", "--run-dir", str(tmp_path / "ppo"), "--init", bc]
    assert main([*args, "--config", "finetune_go1", "--train-set", "ppo.num_steps=8"]) == 0
    assert (tmp_path / "ppo" / "checkpoints" / "final.pt").is_file()
    # A dataset that is not one is refused in one line, naming the file.
    (tmp_path / "junk.h5").write_text("junk")
    assert main(["train", "bc", "--data", str(tmp_path / "junk.h5"), "-o", bc]) == 2
    assert "junk.h5: not a readable HDF5 file" in capsys.readouterr().err


def test_play_writes_a_video_of_a_bundle(walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`unio4 play` renders a deterministic rollout to MP4 with the velocities written on the frames."""
    import imageio.v3 as iio

    out = tmp_path / "walk.mp4"
    assert main(["play", str(walking_bundle), "--command", "0.5,0,0", "--seconds", "1.2", "--video", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"video: {out} (30 frames)" in text and "falls 0" in text
    frames = iio.imread(out, plugin="FFMPEG")
    assert frames.shape[0] == 30 and frames.shape[1:] == (480, 640, 3)
    assert frames[10].std() > 10  # a picture, not a blank frame


def test_version_exact_flags_defaults_and_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    """--version; no abbreviated flags; defaults in --help; 'did you mean' for a misspelt config key."""
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("unio4 ")
    with pytest.raises(SystemExit) as done:
        main(["train", "online", "--num-env", "2"])  # abbreviation of --num-envs: refused
    assert done.value.code == 2 and "unrecognized arguments: --num-env" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    assert "(default: 192.168.123.10:8007)" in capsys.readouterr().out
    assert main(["sim", "gait", "--set", "comands.lin_vel_x=[0,1]"]) == 2
    assert "unknown key 'comands' (did you mean 'commands'?" in capsys.readouterr().err


def test_training_piped_prints_one_line_per_iteration(tmp_path: Path) -> None:
    """Not on a terminal, PPO writes one full line per iteration as it goes (no bar, nothing cut)."""
    argv = [sys.executable, "-m", "unio4.cli", "train", "online", "--num-envs", "2", "--iterations", "3"]
    argv += ["--train-set", "ppo.num_steps=4", "--run-dir", str(tmp_path / "run")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("PPO ")]
    assert [line.split(" | ")[0] for line in lines] == ["PPO 1/3 (33%)", "PPO 2/3 (67%)", "PPO 3/3 (100%)"]
    assert all("samples/s" in line and "ETA" in line and "…" not in line for line in lines)


def test_runs_never_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second run into a used run dir is refused; --resume needs a checkpoint; run.yaml records the run."""
    import yaml

    run = tmp_path / "run"
    argv = ["train", "online", "--num-envs", "2", "--iterations", "1", "--train-set", "ppo.num_steps=4", "--run-dir", str(run)]
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
    assert main([*argv[:-4], "--iterations", "2", "--train-set", "ppo.num_steps=4", "--run-dir", str(run), "--resume"]) == 0
    assert any(p.name.startswith("run.resumed-") for p in run.iterdir())


def test_list_names_presets_backends_and_robots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "go1_flat" in out and "ppo_go1" in out and "mujoco, mujoco_warp, pybullet, isaacgym" in out and "robots: go1" in out
    assert main(["list", "nonsense"]) == 2
