"""``--logger tensorboard|wandb|none``: the same scalars at the same steps wherever they go, and W&B never stops a run.

W&B runs here are offline (``WANDB_MODE=offline``) with its server address pointed at a closed local port, so
nothing can leave the machine; the offline run's transaction log is read back with W&B's own protobufs.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from unio4.cli import main
from unio4.learning.curves import CurveLogger, read_history
from unio4.learning.loggers import LoggerSpec, wandb_mode

PENDULUM = ["train", "online", "--env", "Pendulum-v1", "--num-envs", "2", "--iterations", "2", "--eval-episodes", "1"]


PENDULUM += ["--set", "train.ppo.num_steps=16", "--set", "train.eval_interval=0", "--threads", "1"]


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B offline, silent, with no key, its own config folders, and no server it could reach."""
    pytest.importorskip("wandb")  # the optional extra unio4[wandb]
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: any attempt fails at once, locally
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def wandb_records(path: Path) -> Iterator[Any]:
    """The records of a ``.wandb`` transaction log (a LevelDB-style log of W&B's ``Record`` protobufs)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    block, pos, partial = 32768, 7, b""  # a 7-byte file header, then 32 KiB blocks of 7-byte-headed chunks
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # block padding
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        partial = chunk if kind in (1, 2) else partial + chunk  # full / first, or middle / last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            record.ParseFromString(partial)
            yield record


def test_train_online_with_wandb_leaves_an_offline_run_to_sync(offline_wandb: None, tmp_path: Path) -> None:
    run = tmp_path / "run"
    import wandb

    assert main([*PENDULUM, "--logger", "wandb", "--out", str(run)]) == 0
    wandb.teardown()  # what the end of the process does (atexit): W&B's service writes the last records and closes the log
    assert not (run / "tb").exists()  # W&B instead of TensorBoard, not beside it
    (folder,) = (run / "wandb").glob("offline-run-*")
    (log,) = folder.glob("run-*.wandb")
    records = list(wandb_records(log))

    # the resolved configs are the W&B config
    (start,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: json.loads(item.value_json) for item in start.config.update}
    assert config["train"]["iterations"] == 2 and config["train"]["ppo"]["num_steps"] == 16
    assert start.project == "unio4" and start.display_name == "run"

    # the same scalars at the same steps as metrics.jsonl (a step's values in one W&B row), then the curves
    rows = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            rows[r.history.step.num] = items
    expected: dict[int, dict[str, float]] = {}
    for row in read_history(run / "metrics.jsonl"):
        expected.setdefault(int(row.pop("step")), {}).update(row)
    assert sorted(rows) == sorted(expected) == [32, 64]
    for step, scalars in expected.items():
        assert {k: rows[step][k] for k in scalars} == pytest.approx(scalars)
    assert rows[64]["curves/_type"] == "image-file"
    assert (folder / "files" / rows[64]["curves/path"]).is_file()

    # W&B itself would upload it (a dry run touches no network)
    sync = [sys.executable, "-c", "from wandb.cli.cli import cli; cli()", "sync", "--dry-run", str(folder)]
    out = subprocess.run(sync, capture_output=True, text=True, timeout=60, env=os.environ.copy(), cwd=tmp_path)
    assert out.returncode == 0 and "Would sync 1 run" in out.stdout + out.stderr, out.stdout + out.stderr


@pytest.mark.parametrize("logger", ["tensorboard", "none"])
def test_tensorboard_by_default_and_nothing_with_none(logger: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = [*PENDULUM[:7], "1", *PENDULUM[8:], "--out", str(run)]
    assert main([*argv, *(["--logger", "none"] if logger == "none" else [])]) == 0
    assert (run / "metrics.jsonl").is_file() and (run / "curves.png").is_file()  # always
    events = list(run.glob("tb/events.out.tfevents.*"))
    assert len(events) == (1 if logger == "tensorboard" else 0)
    assert not (run / "wandb").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "online", "--env", "Pendulum-v1"],
        ["train", "offline", "--data", "missing.h5"],
        ["train", "bc", "--data", "missing.h5"],
        ["bench", "walk"],
    ],
    ids=" ".join,
)
def test_logger_wandb_without_the_package_is_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` fails, as when it is not installed
    out = tmp_path / ("bc.pt" if "bc" in argv else "run")
    assert main([*argv, "--logger", "wandb", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "unio4: error: --logger wandb needs the wandb package: pip install 'unio4[wandb]'\n"
    assert not out.exists()  # before any work


def test_wandb_that_cannot_start_warns_once_and_training_goes_on(
    offline_wandb: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import wandb

    def refuse(**kwargs: Any) -> None:
        raise RuntimeError("no server\nat all")

    monkeypatch.setattr(wandb, "init", refuse)
    curves = CurveLogger(tmp_path, LoggerSpec("wandb", {"train": {"lr": 1e-3}}, "run"))
    curves.log(1, {"a": 1.0})
    curves.log(2, {"a": 2.0})
    curves.plot(["a"])
    curves.close()
    assert [row["a"] for row in curves.history()] == [1.0, 2.0]
    err = capsys.readouterr().err.splitlines()
    assert err == ["unio4: warning: W&B could not start (RuntimeError: no server at all); training goes on without it"]


def test_wandb_that_fails_mid_run_warns_once(offline_wandb: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curves = CurveLogger(tmp_path, LoggerSpec("wandb", {}, "run"))
    run = curves.sink.run  # type: ignore[attr-defined]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    run.log = broken
    for step in range(4):
        curves.log(step, {"a": float(step)})
    curves.close()
    assert len(curves.history()) == 4
    assert capsys.readouterr().err.count("unio4: warning: W&B stopped logging (OSError: disk full)") == 1


def test_wandb_mode_offline_without_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode() == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"
