"""Shared command options (unio4/commands/options.py): ``--set TARGET.KEY=VALUE``."""

from __future__ import annotations

import pytest

from unio4.cli import main


def test_set_names_the_closest_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "online", "--set", "trian.ppo.clip=0.1"])
    assert "'trian' is not a config of this command (did you mean 'train'?); TARGET is one of task, train" in capsys.readouterr().err
