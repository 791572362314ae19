"""The command line's error reporter (configs/command_line.py): a bad config is one line on stderr, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.configs.conftest import write
from unio4.cli import main


def test_cli_reports_config_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "terrain:\n  type: lava\n")
    code = main(["sim", "bench", "--task", str(path), "--num-envs", "2", "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "terrain.type" in err and "lava" in err
