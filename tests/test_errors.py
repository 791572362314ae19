"""Every failure a user can cause is one line on stderr, ``unio4: error: ...``, naming the culprit; never a traceback.

One test per class of failure (docs: the CLI's error standard). Files are tiny and made here; nothing trains.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from unio4.cli import main


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], *culprits: str, code: int = 2) -> str:
    """Run ``unio4 ARGV`` in-process; assert exit ``code`` and one ``unio4: error:`` line naming every culprit."""
    try:
        rc = main(argv)
    except SystemExit as done:  # argparse
        rc = int(done.code or 0)
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("unio4: error:")]
    assert len(lines) == 1, err
    for culprit in culprits:
        assert culprit in lines[0], lines[0]
    return lines[0]


def small_dataset(path: Path, rows: int = 20) -> Path:
    with h5py.File(path, "w") as f:
        for key in ("observations", "next_observations", "actions"):
            f[key] = np.zeros((rows, 3), np.float32)
        f["rewards"] = np.zeros(rows, np.float32)
        f["terminals"] = np.zeros(rows, bool)
        f["timeouts"] = np.arange(rows) == rows - 1
        f.create_group("metadata").attrs["source"] = json.dumps("test")
    return path


def fake_bundle(path: Path) -> Path:
    """A directory that looks like a bundle to a dataset loader (a manifest.yaml)."""
    path.mkdir()
    (path / "manifest.yaml").write_text("format: 2\n")
    return path


def tiny_bundle(root: Path) -> Path:
    """A real policy bundle of an untrained actor (export only, no training)."""
    from unio4.configs.loader import to_dict
    from unio4.learning.checkpoint import save_checkpoint
    from unio4.learning.policy import GaussianActor, NetworkConfig
    from unio4.robots.description import load_robot
    from unio4.sim.config import load_task_config

    task = load_task_config("go1_flat")
    joints = len(load_robot(task.robot).joint_names)
    obs, net = task.observations.size(joints), NetworkConfig()
    actor = GaussianActor(obs, joints, task.action_clip, net)
    state = {"kind": "bc", "actor": actor.state_dict(), "network": to_dict(net), "obs_dim": obs, "act_dim": joints}
    save_checkpoint(root / "tiny.pt", {**state, "action_bound": task.action_clip, "task_config": to_dict(task)})
    assert main(["export", str(root / "tiny.pt"), "-o", str(root / "bundle")]) == 0
    return root / "bundle"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bundle(tmp_path_factory.mktemp("tiny"))


# 1. the robot unreachable: one line, and no robot time charged
def test_session_with_an_unreachable_robot_is_one_line_and_costs_no_robot_time(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from unio4.configs.loader import to_dict
    from unio4.learning.robot.session import CONFIG_FILE, TASK_FILE, SessionConfig, SessionState
    from unio4.sim.config import load_task_config

    root = tmp_path / "session"  # a session past its start (the start gate is not what this tests)
    root.mkdir()
    cfg = SessionConfig(rollouts=1, steps=5, prompt=False)
    (root / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    (root / TASK_FILE).write_text(yaml.safe_dump(to_dict(load_task_config("go1_flat")), sort_keys=False))
    SessionState(checkpoint=str(bundle / "checkpoint.pt"), bundle=str(bundle)).save(root / "state.json")
    started = time.monotonic()
    line = fails(["session", "--out", str(root), "--set", "session.robot=127.0.0.1:9"], capsys, "robot unreachable at 127.0.0.1:9")
    assert time.monotonic() - started < 60
    assert "unio4 emulate" in line and "no robot time charged" in line
    state = json.loads((root / "state.json").read_text())
    # resumable, nothing spent: it stopped at the first phase, the start bundle's reference walk on the robot
    assert state["robot_seconds"] == 0.0 and state["phase"] == "check"
    argv = ["deploy", str(bundle), "--robot", "notahost.invalid", "--local-port", "0"]
    fails(argv, capsys, "cannot resolve robot address 'notahost.invalid'")


# 2. a device the machine lacks
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize(
    ("argv", "culprit"),
    [
        (["train", "online", "--set", "train.device=cuda", "--iterations", "1"], "train.device=cuda"),
        (["train", "online", "--backend", "mujoco_warp", "--set", "train.device=cuda:0", "--iterations", "1"], "train.device=cuda:0"),
        (["train", "offline", "--data", "DATA", "--set", "train.device=cuda"], "train.device=cuda"),
        (["train", "online", "--set", "train.device=tpu", "--iterations", "1"], "not a torch device"),
    ],
)
def test_a_cuda_device_without_cuda_is_refused_up_front(
    argv: list[str], culprit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(small_dataset(tmp_path / "d.h5"))
    argv = [data if a == "DATA" else a for a in argv] + ["-o", str(tmp_path / "run")]
    fails(argv, capsys, culprit)
    assert not (tmp_path / "run").exists()  # refused before a run directory was made


def test_a_warp_cuda_device_without_cuda_is_one_line() -> None:
    pytest.importorskip("warp")
    import warp as wp

    from unio4.sim.backends.mujoco_warp_backend import warp_device

    wp.init()
    if wp.is_cuda_available():
        pytest.skip("Warp sees a GPU here")
    with pytest.raises(ValueError, match=r"task\.warp\.device=cuda:0: Warp sees no CUDA device"):
        warp_device("cuda:0")


# 3 and 4. datasets: a corrupt HDF5 file, a bundle, a directory, a checkpoint, a missing file
def test_dataset_paths_of_the_wrong_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = small_dataset(tmp_path / "corrupt.h5")
    raw = bytearray(corrupt.read_bytes())
    raw[len(raw) // 4 : len(raw) // 2] = b"\xff" * (len(raw) // 2 - len(raw) // 4)  # the middle: heaps and b-trees
    corrupt.write_bytes(bytes(raw))
    bundle = fake_bundle(tmp_path / "bundle")
    (tmp_path / "ckpt.pt").write_bytes(b"PK\x03\x04 not hdf5")
    (tmp_path / "dir").mkdir()
    cases = [
        (corrupt, "not a readable HDF5 dataset"),
        (bundle, "a policy bundle (a directory with manifest.yaml), not a dataset"),
        (tmp_path / "dir", "a directory, not a dataset"),
        (tmp_path / "ckpt.pt", "not a readable HDF5 dataset"),
        (tmp_path / "missing.h5", "dataset file not found"),
    ]
    for path, message in cases:
        fails(["train", "offline", "--data", str(path), "-o", str(tmp_path / "run")], capsys, str(path), message)
        fails(["data", "stats", str(path)], capsys, str(path), message)
    fails(["train", "bc", "--data", str(corrupt), "-o", str(tmp_path / "bc.pt")], capsys, str(corrupt), "not a readable HDF5 dataset")


# 5. a file that is not a checkpoint: no advice to load it unsafely
def test_a_file_that_is_not_a_checkpoint_is_named_without_torch_advice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# not a checkpoint\n")
    line = fails(["export", str(readme), "-o", str(tmp_path / "b")], capsys, str(readme), "not a readable unio4 checkpoint")
    assert "weights_only" not in line and "PyTorch 2.6" not in line
    line = fails(["export", str(small_dataset(tmp_path / "d.h5")), "-o", str(tmp_path / "b")], capsys, "not a readable unio4 checkpoint")
    assert "weights_only" not in line


# 6. flags with a wrong value name the flag
@pytest.mark.parametrize(
    ("flags", "culprit"),
    [
        (["--command", "0.5,0"], "--command '0.5,0': expected VX,VY,YAW"),
        (["--command", "9,0,0"], "--command '9,0,0'"),
        (["--command", "nan,0,0"], "--command 'nan,0,0'"),
        (["--local-port", "99999"], "--local-port"),
        (["--robot", ":9"], "--robot ':9'"),
    ],
)
def test_deploy_flags_name_themselves(flags: list[str], culprit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(["deploy", str(fake_bundle(tmp_path / "b")), *flags], capsys, culprit)
    assert "configs/deploy" not in line


# 7. "did you mean" for names
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sim", "bench", "--task", "go1_rought"], "(did you mean 'go1_rough'?)"),
        (["collect", "--policy", "gaitt"], "(did you mean 'gait'?)"),
        (["train", "bc", "--data", "x.h5", "--config", "bc_go"], "(did you mean 'bc_go1'?)"),
        (["emulate", "--reality", "slipery"], "(did you mean 'slippery'?)"),
        (["robot", "export", "--robot", "go2"], "(did you mean 'go1'?)"),
        (["sim", "bench", "--task", "nothing.md"], "nothing.md: not found; give a task preset name"),
        (["bench", "walk", "--well", "--judge-task", "go1_flatt"], "(did you mean 'go1_flat'?)"),
    ],
)
def test_names_get_a_suggestion(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    fails(argv, capsys, message)


# 8. a robot host (or a tracking camera's) that does not resolve
def test_an_unresolvable_robot_host_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = fake_bundle(tmp_path / "b")
    line = fails(["deploy", str(bundle), "--robot", "notahost.invalid"], capsys)
    assert "cannot resolve robot address 'notahost.invalid'" in line and "Permission denied" not in line
    out = tmp_path / "run"
    argv = ["deploy", str(bundle), "--robot", "127.0.0.1", "-o", str(out)]
    fails(
        [*argv, "--set", "runtime.tracker.address=notahost.invalid:7010"], capsys, "tracker.address 'notahost.invalid:7010': cannot resolve"
    )
    fails([*argv, "--set", "runtime.tracker.address=robot"], capsys, "tracker.address 'robot': expected HOST:PORT")
    assert not out.exists()  # refused before a log directory was made


# 9. deploy logs every run: runs/deploy/<stamp> by default, a new one each time
def test_deploy_logs_to_a_new_directory_by_default(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import unio4.deploy.runtime as runtime

    def fake_run(bundle: object, host: str, port: int, cfg: object, duration: float, local_port: int, log_dir: Path, *rest: object):
        (Path(log_dir) / "summary.yaml").write_text("policy_steps: 1\n")
        stats = {"p50_ms": 0.0, "p99_ms": 0.0}
        timing = {"inference": stats, "policy_period_error": stats, "io_wake_error": stats}
        return runtime.RunResult("duration", False, 1, {**timing, "policy_missed_deadlines": 0, "io_late_ticks": 0, "io_missed_ticks": 0})

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runtime, "run_bundle", fake_run)
    for _ in range(2):
        assert main(["deploy", str(bundle), "--robot", "127.0.0.1:9"]) == 0
    logs = sorted((tmp_path / "runs" / "deploy").iterdir())
    assert len(logs) == 2 and all((log / "summary.yaml").is_file() for log in logs)  # two runs, two logs, none overwritten
    assert f"deploy: log in {Path('runs') / 'deploy' / logs[0].name}" in capsys.readouterr().out
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)  # a run that never connected leaves no empty log behind
    argv = ["deploy", str(bundle), "--robot", "127.0.0.1:9", "--local-port", "0", "--set", "runtime.connect_timeout_s=0.1"]
    fails(argv, capsys, "robot unreachable at 127.0.0.1:9", "no LowState within 0.1 s")
    assert len(list((tmp_path / "runs" / "deploy").iterdir())) == 2


# 10. paths of the wrong kind, everywhere, and the safety net
@pytest.mark.parametrize(
    ("argv", "culprit"),
    [
        (["collect", "--num-envs", "1", "--steps", "1", "-o", "DIR"], "-o DIR: a directory"),
        (["train", "bc", "--data", "DATA", "-o", "DIR"], "-o DIR: a directory"),
        (["train", "offline", "--data", "DATA", "-o", "FILE"], "FILE: a file; --out names a run directory"),
        (["session", "--out", "FILE", "--init", "FILE"], "--out FILE: a file"),
        (["deploy", "DIR", "--out", "FILE"], "--out FILE: a file"),
        (["replay", "FILE"], "FILE: a file, not a rollout log directory"),
        (["replay", "DIR"], "DIR: not a rollout log"),
        (["data", "pack", "DATA", "-o", "OUT"], "DATA: not a rollout log"),
        (["emulate", "--host", "notahost.invalid"], "cannot listen on udp://notahost.invalid"),
        (["train", "online", "--env", "Hoper-v4", "-o", "OUT"], "--env Hoper-v4"),
    ],
)
def test_paths_and_hosts_of_the_wrong_kind(argv: list[str], culprit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = {"DIR": tmp_path / "dir", "FILE": tmp_path / "file.md", "DATA": tmp_path / "d.h5", "OUT": tmp_path / "out"}
    names["DIR"].mkdir()
    names["FILE"].write_text("# a file\n")
    small_dataset(names["DATA"])
    argv = [str(names.get(a, a)) for a in argv]
    for key, path in names.items():
        culprit = culprit.replace(key, str(path))
    fails(argv, capsys, culprit)


def test_an_unexpected_error_is_one_line_and_the_traceback_is_on_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import unio4.commands.listing as listing

    def broken(args: object) -> int:
        raise KeyError("boom")

    monkeypatch.setattr(listing, "run", broken)  # a bug in a command (the parser is built per call)
    line = fails(["list"], capsys, "KeyError: 'boom'", code=1)
    assert line.endswith("(unexpected; rerun with UNIO4_DEBUG=1 for the traceback)")
    monkeypatch.setenv("UNIO4_DEBUG", "1")
    assert main(["list"]) == 1
    assert "Traceback" in capsys.readouterr().err
