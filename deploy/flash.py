"""``unio4 flash``: install a policy bundle on the robot's computer over SSH, atomically.

Remote layout under ``remote_dir`` (default ``~/unio4/bundles``)::

    versions/<name>/        one directory per flashed bundle (policy.onnx, manifest.yaml, SHA256SUMS)
    current -> versions/<name>   the bundle `unio4 deploy` runs; switched by an atomic rename
    history                 one line per switch, newest last (what --rollback walks back)

A flash copies the bundle into a temporary directory, verifies every file's sha256 ON THE ROBOT
(``sha256sum -c``), renames it into ``versions/``, then swaps the ``current`` link with
``ln -s`` + ``mv -T`` (a rename, so a reader sees the old or the new bundle, never neither).
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

from deploy.bundle import load_bundle, sha256_file

SUMS_FILE = "SHA256SUMS"


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


def version_name(bundle_dir: Path) -> str:
    """``YYYYmmdd-HHMMSS-<first 12 hex of the policy's sha256>``: sortable and content-addressed."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{sha256_file(bundle_dir / 'policy.onnx')[:12]}"


def flash(bundle_dir: str | Path, target: SshTarget, keep: int = 5) -> str:
    """Copy, verify remotely, switch ``current``; returns the version name now current.

    A bundle whose policy is already on the robot (same sha256) is not copied again: ``current``
    switches to the existing version.
    """
    bundle_dir = Path(bundle_dir)
    load_bundle(bundle_dir, robot=None)  # refuses a bundle whose manifest and policy disagree, before any transfer
    files = sorted(p for p in bundle_dir.iterdir() if p.is_file() and p.name != SUMS_FILE)
    sums = "".join(f"{sha256_file(p)}  {p.name}\n" for p in files)
    name = version_name(bundle_dir)
    present = [v for v in versions(target) if v.endswith(name[-12:])]
    if present:
        switch(target, present[-1])
        return present[-1]
    root = shlex.quote(target.remote_dir)
    staging = f"{target.remote_dir}/.incoming-{name}"
    remote(target, f"mkdir -p {root}/versions {shlex.quote(staging)}", "preparing the remote directory")
    scp = ["scp", *target.options(), "-q", "-P", str(target.port)]
    _run([*scp, *map(str, files), f"{target.host}:{staging}/"], "copying the bundle")
    script = f"""
cd {shlex.quote(staging)}
cat > {SUMS_FILE} <<'UNIO4_SUMS'
{sums.rstrip()}
UNIO4_SUMS
sha256sum -c --quiet {SUMS_FILE}
cd - >/dev/null
mv -T {shlex.quote(staging)} {root}/versions/{name}
"""
    remote(target, script, "verifying the bundle on the robot")
    switch(target, name)
    prune(target, keep)
    return name


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
