"""``unio4 flash``: copy a bundle to the robot over SSH, verify sha256 there, switch `current` atomically."""

from __future__ import annotations

import argparse
from pathlib import Path

WORDS = ("flash",)
HELP = "copy a bundle to the robot over SSH, verify sha256 there, switch `current` atomically"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", nargs="?", help="policy bundle directory (unio4 export)")
    p.add_argument("--host", required=True, help="user@robot, e.g. unitree@192.168.123.15")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--identity", default=None, help="SSH private key file (default: ssh's own choice)")
    p.add_argument("--known-hosts", default=None, help="known_hosts file (default: ~/.ssh/known_hosts)")
    p.add_argument("--accept-new-host-key", action="store_true", help="trust an unknown robot's key on first use (off by default)")
    p.add_argument("--remote-dir", default="unio4/bundles", help="bundle store on the robot (relative: under the user's home)")
    p.add_argument("--keep", type=int, default=5, help="versions kept on the robot (the current one always)")
    p.add_argument("--rollback", action="store_true", help="switch current back to the previous version")


def run(args: argparse.Namespace) -> int:
    from unio4.deploy.flash import SshTarget, current_version, flash, rollback

    target = SshTarget(
        host=args.host,
        port=args.port,
        identity=Path(args.identity) if args.identity else None,
        known_hosts=Path(args.known_hosts) if args.known_hosts else None,
        accept_new_host_key=args.accept_new_host_key,
        remote_dir=args.remote_dir,
    )
    if args.rollback:
        print(f"rolled back {args.host}:{args.remote_dir}/current -> {rollback(target)}")
        return 0
    if not args.bundle:
        raise ValueError("flash: give a BUNDLE directory, or --rollback")
    report = flash(args.bundle, target, keep=args.keep)
    now = current_version(target)
    if now != report.version:
        raise OSError(f"flash: {args.host}:{args.remote_dir}/current is {now}, expected {report.version}")
    print(f"flashed {args.bundle} -> {args.host}:{args.remote_dir}/versions/{report.version}; current -> {report.version}")
    print(f"  {report.summary()}")
    return 0
