"""``unio4 bench learning`` (unio4/commands/bench_learning.py) prints every stage."""

from __future__ import annotations

import pytest

from tests.unio4.commands.conftest import TINY_CLI


def test_cli_bench_learning_prints_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    from unio4.cli import main

    args = ["bench", "learning", "--config", "uni_o4_offline_cpu", "--transitions", "3000", "--steps", "3", *TINY_CLI]
    assert main(args) == 0
    out = capsys.readouterr().out
    for stage in ("critics (iql", "BC ensemble, batched", "members one after another", "policy improvement"):
        assert stage in out
    assert "batched ensemble speed-up over sequential members:" in out and "AM-Q evaluation" in out
