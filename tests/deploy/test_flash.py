"""``unio4 flash`` against a real OpenSSH server started on loopback by the test (no mocks)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from unio4.cli import main
from unio4.deploy.bundle import sha256_file, write_sums
from unio4.deploy.flash import FlashError, SshTarget, current_version, flash, rollback, versions

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshTarget]:
    """sshd on 127.0.0.1:<free port>, key auth only, for the current user; yields a target that trusts it."""
    d = tmp_path_factory.mktemp("sshd")
    keygen(d / "host_key")
    keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, f"sshd exited: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, "sshd did not start listening"
            time.sleep(0.05)
    key_type, key = (d / "host_key.pub").read_text().split()[:2]
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    yield SshTarget(f"{getpass.getuser()}@127.0.0.1", port, d / "client_key", d / "known_hosts", remote_dir=str(d / "robot"))
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def two_bundles(walking_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The walking bundle and a different policy (5 BC steps) exported from the same data."""
    root = tmp_path_factory.mktemp("bundles")
    data = walking_bundle.parent / "gait.h5"
    assert main(["train", "bc", "--data", str(data), "--set", "train.steps=5", "-o", str(root / "bc.pt")]) == 0
    assert main(["export", str(root / "bc.pt"), "-o", str(root / "other")]) == 0
    return walking_bundle, root / "other"


def test_flash_verifies_remotely_switches_and_rolls_back(sshd: SshTarget, two_bundles: tuple[Path, Path]) -> None:
    first, second = two_bundles
    robot = Path(sshd.remote_dir)
    report = flash(first, sshd)
    a = report.version
    assert report.copied and set(report.verified) == {"checkpoint.pt", "manifest.yaml", "policy.onnx"}  # every file the bundle lists
    assert current_version(sshd) == a and (robot / "current").is_symlink()
    assert sha256_file(robot / "current" / "policy.onnx") == sha256_file(first / "policy.onnx")
    assert (robot / "current" / "SHA256SUMS").is_file() and not list(robot.glob(".incoming-*"))
    b = flash(second, sshd).version
    assert b != a and current_version(sshd) == b
    assert sha256_file(robot / "current" / "policy.onnx") == sha256_file(second / "policy.onnx")
    assert set(versions(sshd)) == {a, b}  # the previous version is kept
    assert rollback(sshd) == a and current_version(sshd) == a
    again = flash(second, sshd)
    assert again.version == b and not again.copied  # already on the robot: re-verified and switched to, not copied
    assert (robot / "history").read_text().split() == [a, b, a, b]


def test_keep_prunes_old_versions_but_never_the_current(sshd: SshTarget, two_bundles: tuple[Path, Path]) -> None:
    target = SshTarget(sshd.host, sshd.port, sshd.identity, sshd.known_hosts, remote_dir=sshd.remote_dir + "-keep")
    a = flash(two_bundles[0], target).version
    b = flash(two_bundles[1], target, keep=1).version
    assert versions(target) == [b] and current_version(target) == b
    assert a not in versions(target)
    with pytest.raises(FlashError, match="nothing to roll back to"):
        rollback(target)


def test_unknown_host_key_is_refused(sshd: SshTarget, two_bundles: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "empty_known_hosts").write_text("")
    stranger = SshTarget(sshd.host, sshd.port, sshd.identity, tmp_path / "empty_known_hosts", remote_dir=str(tmp_path / "robot"))
    with pytest.raises(FlashError, match="Host key verification failed"):
        flash(two_bundles[0], stranger)
    assert not (tmp_path / "robot").exists()


def test_a_changed_manifest_is_a_new_version(sshd: SshTarget, two_bundles: tuple[Path, Path], tmp_path: Path) -> None:
    """Same policy.onnx, different manifest: the new manifest reaches the robot (the identity covers it)."""
    target = SshTarget(sshd.host, sshd.port, sshd.identity, sshd.known_hosts, remote_dir=str(tmp_path / "robot"))
    first = flash(two_bundles[0], target)
    edited = tmp_path / "edited"
    shutil.copytree(two_bundles[0], edited)
    manifest = yaml.safe_load((edited / "manifest.yaml").read_text())
    manifest["lineage"]["note"] = "re-exported"
    (edited / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    write_sums(edited)
    second = flash(edited, target)
    assert second.copied and second.version != first.version and second.identity != first.identity
    on_robot = yaml.safe_load((tmp_path / "robot" / "current" / "manifest.yaml").read_text())
    assert on_robot["lineage"]["note"] == "re-exported"


def test_tampered_bundle_never_leaves_the_workstation(sshd: SshTarget, two_bundles: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(two_bundles[0], bad)
    with (bad / "policy.onnx").open("ab") as f:
        f.write(b"\0")
    target = SshTarget(sshd.host, sshd.port, sshd.identity, sshd.known_hosts, remote_dir=str(tmp_path / "robot"))
    with pytest.raises(ValueError, match="sha256"):
        flash(bad, target)
    assert not (tmp_path / "robot").exists()


def test_flash_cli_prints_no_secret(sshd: SshTarget, two_bundles: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert sshd.identity is not None and sshd.known_hosts is not None
    common = ["--host", sshd.host, "--port", str(sshd.port), "--identity", str(sshd.identity)]
    common += ["--known-hosts", str(sshd.known_hosts), "--remote-dir", sshd.remote_dir + "-cli"]
    assert main(["flash", str(two_bundles[0]), *common]) == 0
    assert main(["flash", str(two_bundles[1]), *common]) == 0
    assert main(["flash", "--rollback", *common]) == 0
    out = capsys.readouterr()
    assert "verified on the robot: sha256 of checkpoint.pt, manifest.yaml, policy.onnx (sha256sum -c SHA256SUMS)" in out.out
    assert "rolled back" in out.out
    private = sshd.identity.read_text().splitlines()[1]
    assert private not in out.out + out.err and "PRIVATE KEY" not in out.out + out.err
    assert os.path.islink(sshd.remote_dir + "-cli/current")
