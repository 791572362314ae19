"""``unio4 flash``: install a policy bundle on the robot's computer over SSH, atomically.

Remote layout under ``remote_dir`` (default ``~/unio4/bundles``)::

    versions/<name>/        one directory per flashed bundle (policy.onnx, manifest.yaml, SHA256SUMS)
    current -> versions/<name>   the bundle `unio4 deploy` runs; switched by an atomic rename
    history                 one line per switch, newest last (what --rollback walks back)

A bundle is identified by the sha256 of its ``SHA256SUMS`` (which lists every other file, the
manifest included), so any change to any file is a new version. A flash of a bundle whose identity
is already on the robot copies nothing: it re-verifies that version there and switches to it. Any
other flash copies the bundle into a temporary directory, verifies every file's sha256 ON THE
ROBOT (``sha256sum -c``) and the identity of the copied ``SHA256SUMS``, renames it into
``versions/``, then swaps the ``current`` link with ``ln -s`` + ``mv -T`` (a rename, so a reader
sees the old or the new bundle, never neither). :class:`FlashReport` says which files were checked.
Older versions are kept (``keep`` newest, never the current one). OpenSSH's own client does the
transport with host-key checking on (``StrictHostKeyChecking=yes``) and ``BatchMode`` (no
password prompts); nothing here reads, prints or logs a key or password.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from unio4.deploy.bundle import SUMS_FILE, load_bundle


class FlashError(OSError):
    """A flash or rollback that did not complete (an I/O failure of the remote side, hence ``OSError``);
    the robot's ``current`` bundle is unchanged.
    """


@dataclass(frozen=True)
class SshTarget:
    """How to reach the robot's computer over SSH, and where bundles live there."""

    host: str  # user@host
    port: int = 22
    identity: Path | None = None
    known_hosts: Path | None = None  # default: the user's ~/.ssh/known_hosts
    accept_new_host_key: bool = False  # trust-on-first-use; off by default
    remote_dir: str = "unio4/bundles"  # relative paths are under the remote user's home
    connect_timeout_s: int = 10

    def options(self) -> list[str]:
        """The ssh/scp options: batch mode, timeout, host-key policy, identity."""
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}"]
        opts += ["-o", f"StrictHostKeyChecking={'accept-new' if self.accept_new_host_key else 'yes'}"]
        if self.known_hosts is not None:
            opts += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.identity is not None:
            opts += ["-o", "IdentitiesOnly=yes", "-i", str(self.identity)]
        return opts


def _run(cmd: list[str], what: str, stdin: str | None = None) -> str:
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise FlashError(f"{what} failed (exit {result.returncode}): {detail}")
    return result.stdout


def remote(target: SshTarget, script: str, what: str) -> str:
    """Run a POSIX shell ``script`` on the robot."""
    return _run(["ssh", *target.options(), "-p", str(target.port), target.host, "sh", "-s"], what, stdin=f"set -eu\n{script}\n")


@dataclass(frozen=True)
class FlashReport:
    """What a flash did: the version now current, whether it was copied, and what was verified on the robot."""

    version: str
    copied: bool
    verified: tuple[str, ...]  # files whose sha256 the robot checked (sha256sum -c SHA256SUMS)
    identity: str  # sha256 of SHA256SUMS, checked on the robot too

    def summary(self) -> str:
        """One line for the operator."""
        how = "copied" if self.copied else "already on the robot, not copied"
        files = ", ".join(self.verified)
        return f"{how}; verified on the robot: sha256 of {files} (sha256sum -c {SUMS_FILE}) and bundle id {self.identity[:16]}..."


def version_name(identity: str) -> str:
    """``YYYYmmdd-HHMMSS-<first 16 hex of the bundle id>``: sortable and content-addressed."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{identity[:16]}"


def _verify_remote(target: SshTarget, directory: str, identity: str) -> tuple[str, ...]:
    """Check every file of ``directory`` on the robot against its ``SHA256SUMS`` and that file's own sha256."""
    script = f"""
cd {shlex.quote(directory)}
sha256sum -c --quiet {SUMS_FILE}
test "$(sha256sum < {SUMS_FILE} | cut -d' ' -f1)" = {shlex.quote(identity)}
cut -d' ' -f3- {SUMS_FILE}
"""
    out = remote(target, script, f"verifying {directory} on the robot")
    return tuple(line for line in out.splitlines() if line)


def flash(bundle_dir: str | Path, target: SshTarget, keep: int = 5) -> FlashReport:
    """Verify locally, copy what is not on the robot yet, verify remotely, switch ``current``."""
    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir, robot=None)  # refuses a bundle that must not run, before any transfer
    identity = bundle.sha256
    root = shlex.quote(target.remote_dir)
    present = [v for v in versions(target) if v.endswith(f"-{identity[:16]}")]
    if present:  # the very same files (manifest included) are there: check them again, switch
        name = present[-1]
        verified = _verify_remote(target, f"{target.remote_dir}/versions/{name}", identity)
        switch(target, name)
        return FlashReport(name, False, verified, identity)
    name = version_name(identity)
    files = sorted(p for p in bundle_dir.iterdir() if p.is_file())
    staging = f"{target.remote_dir}/.incoming-{name}"
    remote(target, f"mkdir -p {root}/versions {shlex.quote(staging)}", "preparing the remote directory")
    scp = ["scp", *target.options(), "-q", "-P", str(target.port)]
    _run([*scp, *map(str, files), f"{target.host}:{staging}/"], "copying the bundle")
    verified = _verify_remote(target, staging, identity)
    remote(target, f"mv -T {shlex.quote(staging)} {root}/versions/{name}", "storing the verified bundle")
    switch(target, name)
    prune(target, keep)
    return FlashReport(name, True, verified, identity)


def switch(target: SshTarget, name: str) -> None:
    """Point ``current`` at ``versions/name`` with one rename, and record it in ``history``."""
    root = shlex.quote(target.remote_dir)
    script = f"""
test -d {root}/versions/{shlex.quote(name)}
ln -sfn versions/{shlex.quote(name)} {root}/.current.new
mv -T {root}/.current.new {root}/current
echo {shlex.quote(name)} >> {root}/history
"""
    remote(target, script, f"switching current to {name}")


def current_version(target: SshTarget) -> str | None:
    """The version ``current`` points at on the robot, or None."""
    root = shlex.quote(target.remote_dir)
    out = remote(target, f"if [ -L {root}/current ]; then readlink {root}/current; fi", "reading the current version")
    return out.strip().removeprefix("versions/") or None


def versions(target: SshTarget) -> list[str]:
    """Every version stored on the robot, oldest first."""
    root = shlex.quote(target.remote_dir)
    out = remote(target, f"ls -1 {root}/versions 2>/dev/null || true", "listing versions")
    return sorted(line for line in out.splitlines() if line)


def rollback(target: SshTarget) -> str:
    """Switch ``current`` back to the version before it (from ``history``); returns that name."""
    root = shlex.quote(target.remote_dir)
    history = remote(target, f"cat {root}/history 2>/dev/null || true", "reading history").split()
    now = current_version(target)
    available = set(versions(target))
    earlier = [v for v in reversed(history) if v != now and v in available]
    if now is None or not earlier:
        raise FlashError(f"nothing to roll back to on {target.host}:{target.remote_dir} (current: {now}, history: {len(history)} entries)")
    switch(target, earlier[0])
    return earlier[0]


def prune(target: SshTarget, keep: int) -> list[str]:
    """Delete all but the ``keep`` newest versions, never the current one; returns what was removed."""
    now = current_version(target)
    old = [v for v in versions(target)[: max(0, len(versions(target)) - keep)] if v != now]
    if old:
        root = shlex.quote(target.remote_dir)
        remote(target, "\n".join(f"rm -rf {root}/versions/{shlex.quote(v)}" for v in old), "removing old versions")
    return old
