"""Bad configs fail with one clear line naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.loader import ConfigError
from robots.description import load_robot
from sim.config import load_task_config
from sim.task import Go1VelocityTask
from unio4.cli import main


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return path


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "robot: go1\ncommands:\n  lin_vel_xx: [0, 1]\n")
    with pytest.raises(ConfigError) as err:
        load_task_config(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "commands" in msg and "lin_vel_xx" in msg


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "episode_length_s: twenty\n")
    with pytest.raises(ConfigError, match=r"episode_length_s: expected float, got 'twenty'"):
        load_task_config(path)


def test_wrong_tuple_length_and_bad_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"commands.lin_vel_x: expected 2 items"):
        load_task_config(write(tmp_path, "commands:\n  lin_vel_x: [0, 1, 2]\n"))
    with pytest.raises(ConfigError, match=r"lower bound 1.0 > upper bound 0.0"):
        load_task_config(write(tmp_path, "commands:\n  lin_vel_x: [1, 0]\n"))


def test_unknown_reward_term(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rewards.weights: unknown reward term 'trackign_lin_vel'"):
        load_task_config(write(tmp_path, "rewards:\n  weights: {trackign_lin_vel: 1.0}\n"))


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found"):
        load_task_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"robot file not found"):
        load_robot("go7")
    cfg = load_task_config(write(tmp_path, "robot: go7\n"))
    with pytest.raises(ConfigError, match=r"go7.yaml: robot file not found \(known robots: \['go1'\]\)"):
        Go1VelocityTask(cfg, 1)


def test_malformed_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"malformed YAML"):
        load_task_config(write(tmp_path, "commands: [unclosed\n"))


def test_overrides_are_validated() -> None:
    cfg = load_task_config("go1_flat", ["commands.lin_vel_x=[0.5, 0.5]"])
    assert cfg.commands.lin_vel_x == (0.5, 0.5)
    with pytest.raises(ConfigError, match=r"rewards\.tracking_sigma: expected float"):
        load_task_config("go1_flat", ["rewards.tracking_sigma=abc"])


def test_cli_reports_config_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "terrain:\n  type: lava\n")
    code = main(["sim", "bench", "--task", str(path), "--num-envs", "2", "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "terrain.type" in err and "lava" in err


def test_exponent_floats_parse_as_numbers(tmp_path: Path) -> None:
    # PyYAML's YAML 1.1 reads "3e-4" as a string; researchers write learning rates that way.
    cfg = load_task_config(write(tmp_path, "episode_length_s: 2e1\n"), overrides=["rewards.tracking_sigma=25e-2"])
    assert cfg.episode_length_s == 20.0 and cfg.rewards.tracking_sigma == 0.25
