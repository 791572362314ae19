"""Every subcommand has --help; the bench and the gait print real numbers."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unio4.cli import GROUPS, build_parser, main
from unio4.commands.options import TARGETS, overrides


def all_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command path of the parser, walked from its subparsers (so none can be forgotten)."""
    found = [list(prefix)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += all_commands(sub, (*prefix, name))
    return found


COMMANDS = all_commands(build_parser())


def required_args(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for a command's positional and required arguments, so its other flags can be parsed."""
    argv: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.nargs != argparse.SUPPRESS and action.dest != "help":
            argv.append("X")
        elif action.required:
            argv += [action.option_strings[0], "X"]
    return argv


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


def test_play_writes_a_video_of_a_bundle(walking_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`unio4 play` renders a deterministic rollout to MP4 with the velocities written on the frames."""
    import imageio.v3 as iio

    out = tmp_path / "walk.mp4"
    assert main(["play", str(walking_bundle), "--command", "0.5,0,0", "--seconds", "1.2", "--out", str(out)]) == 0
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
    assert done.value.code == 2 and "unrecognized arguments: --num-env 2 (did you mean '--num-envs'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["trian", "online"])
    assert done.value.code == 2 and "(did you mean 'train'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    assert "(default: 192.168.123.10:8007)" in capsys.readouterr().out
    assert main(["sim", "gait", "--set", "task.comands.lin_vel_x=[0,1]"]) == 2
    assert "unknown key 'comands' (did you mean 'commands'?" in capsys.readouterr().err


# Output flags other than -o/--out that commands once had, and per-config override flags: all gone.
RETIRED = {"--run-dir", "--dir", "--log-dir", "--workdir", "--json", "--video", "--trace", "--train-set", "--task-set"}


@pytest.mark.parametrize("words", [w for w in COMMANDS if w and w[0] not in GROUPS], ids=" ".join)
def test_one_output_flag_and_one_override_scheme(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command: exact flags only; its output (if any) is -o/--out; its overrides (if any) are --set TARGET.KEY=VALUE."""
    parser = build_parser()
    sub = parser
    for word in words:
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    assert not sub.allow_abbrev
    flags = {o for action in sub._actions for o in action.option_strings}
    assert not flags & RETIRED, flags & RETIRED
    out = [a for a in sub._actions if "--out" in a.option_strings]
    assert not out or out[0].option_strings == ["-o", "--out"]
    sets = [a for a in sub._actions if "--set" in a.option_strings]
    if sets:
        targets = sets[0].targets  # type: ignore[attr-defined]
        assert targets and set(targets) <= set(TARGETS)
        args = parser.parse_args([*words, *required_args(sub), "--set", f"{targets[0]}.a.b=1", "--set", f"{targets[-1]}.c=[1,2]"])
        assert overrides(args, targets[0])[0] == "a.b=1" and overrides(args, targets[-1])[-1] == "c=[1,2]"
        for bad, message in ((f"{targets[0]}x.a=1", "is not a config of this command"), ("a=1", "expected TARGET.KEY=VALUE")):
            with pytest.raises(SystemExit):
                parser.parse_args([*words, *required_args(sub), "--set", bad])
            assert message in capsys.readouterr().err


def test_set_names_the_closest_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "online", "--set", "trian.ppo.clip=0.1"])
    assert "'trian' is not a config of this command (did you mean 'train'?); TARGET is one of task, train" in capsys.readouterr().err


def test_training_piped_prints_one_line_per_iteration(tmp_path: Path) -> None:
    """Not on a terminal, PPO writes one full line per iteration as it goes (no bar, nothing cut)."""
    argv = [sys.executable, "-m", "unio4.cli", "train", "online", "--num-envs", "2", "--iterations", "3"]
    argv += ["--set", "train.ppo.num_steps=4", "--out", str(tmp_path / "run")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("PPO ")]
    assert [line.split(" | ")[0] for line in lines] == ["PPO 1/3 (33%)", "PPO 2/3 (67%)", "PPO 3/3 (100%)"]
    assert all("samples/s" in line and "ETA" in line and "…" not in line for line in lines)


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


def test_list_names_presets_backends_and_robots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "go1_flat" in out and "ppo_go1" in out and "mujoco, mujoco_warp, pybullet, isaacgym" in out and "robots: go1" in out
    assert "reality presets (emulate --reality NAME" in out and "go1_real" in out and "uni_o4_go1" in out
    assert main(["list", "nonsense"]) == 2
