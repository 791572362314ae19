"""``unio4 deploy``: run a policy bundle on a Go1 (or the emulator) at 50 Hz through the SDK, with safety."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

from unio4.commands.options import add_out, add_set, check_out_dir, host_port, overrides, port_number, velocity

WORDS = ("deploy",)
HELP = "run a policy bundle on a Go1 (or the emulator) at 50 Hz through the SDK, with safety"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="policy bundle directory (unio4 export)")
    p.add_argument("--robot", default="192.168.123.10:8007", help="IP[:PORT] of the robot's low-level controller")
    p.add_argument("--local-port", type=port_number, default=8080, help="local UDP port of the SDK (0: any)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of policy control after the stand-up")
    add_out(p, "directory of the crash-safe rollout log (default: a new runs/deploy/YYYYmmdd-HHMMSS)")
    p.add_argument("--explore", action="store_true", help="sample actions (seeded) and log log-probs, for on-robot fine-tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--command", dest="command_vel", default=None, metavar="VX,VY,YAW", help="fixed velocity command (default: remote)")
    p.add_argument("--estop", default=None, metavar="URL", help="serial e-stop port or pyserial URL")
    p.add_argument("--config", default="go1", help="runtime preset in configs/deploy/ or a YAML path")
    p.add_argument(
        "--rerun", default=None, metavar="ADDR", help="stream the run to a Rerun viewer at HOST[:PORT] (port 9876), off the control loop"
    )
    p.add_argument(
        "--rerun-save", default=None, metavar="FILE.rrd", help="write the Rerun stream to this file instead of (or besides) a viewer"
    )
    add_set(p, "runtime.safety.max_tilt_rad=0.6", "runtime")


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import check_bounds, load, resolve_config_path
    from unio4.deploy.bundle import load_bundle
    from unio4.deploy.robot_io import resolve_host
    from unio4.deploy.runtime import RuntimeConfig, run_bundle

    check_out_dir(args.out)  # before any work
    if args.rerun is not None or args.rerun_save is not None:
        from unio4.deploy.rerun_stream import require_rerun

        require_rerun()  # a missing rerun-sdk fails here, in one line, before any work
    runtime_sets = overrides(args, "runtime")
    if args.command_vel is not None:  # checked here, so that a bad one names --command, not the runtime config
        vel = velocity(args.command_vel)
        limits = next(f for f in dataclasses.fields(RuntimeConfig) if f.name == "command").metadata["bounds"]
        check_bounds(vel, limits, f"--command {args.command_vel!r} (VX,VY,YAW)")
        runtime_sets.append(f"command=[{','.join(repr(v) for v in vel)}]")
    if args.estop is not None:
        runtime_sets.append(f"estop.url={args.estop}")
    cfg = load(RuntimeConfig, resolve_config_path(args.config, "deploy"), runtime_sets)
    host, port = host_port(args.robot, 8007)
    resolve_host(host, port)  # a bad address fails here, before a log directory is made
    bundle = load_bundle(args.bundle)
    mode = "explore" if args.explore else "deterministic"
    print(f"deploy: {args.bundle} -> udp://{host}:{port}, {mode}, {args.duration:.1f} s", flush=True)
    log_dir = Path(args.out) if args.out is not None else new_log_dir(Path("runs") / "deploy")
    print(f"deploy: rollout log {log_dir}", flush=True)
    stream = None
    try:
        if args.rerun is not None or args.rerun_save is not None:
            from unio4.deploy.rerun_stream import open_stream
            from unio4.robots.description import load_robot

            stream = open_stream(load_robot(bundle.spec.robot), args.rerun, args.rerun_save)
        result = run_bundle(bundle, host, port, cfg, args.duration, args.local_port, log_dir, args.explore, args.seed, stream)
    except BaseException:
        if args.out is None:
            drop_if_empty(log_dir)  # nothing ran (no robot, no SDK): no empty log left behind
        raise
    t = result.timing
    print(f"deploy: {result.policy_steps} policy steps; ended by {result.reason}; damping held {cfg.damping_hold_s:.1f} s")
    print(f"  inference     p50 {t['inference']['p50_ms']:.3f} ms  p99 {t['inference']['p99_ms']:.3f} ms")
    print(f"  policy period error p99 {t['policy_period_error']['p99_ms']:.3f} ms, missed deadlines {t['policy_missed_deadlines']}")
    print(f"  I/O wake error p99 {t['io_wake_error']['p99_ms']:.3f} ms, late ticks {t['io_late_ticks']}, missed {t['io_missed_ticks']}")
    if stream is not None:
        s = stream.stats
        where = " and ".join(x for x in (args.rerun and f"viewer {args.rerun}", args.rerun_save) if x)
        print(f"  rerun: {s.sent} of {s.steps} steps sent to {where}, {s.dropped} dropped" + (f"; stopped: {s.error}" if s.error else ""))
    print(f"deploy: log in {log_dir}")
    if result.safety_stop:
        print(f"deploy: SAFETY STOP: {result.reason}", file=sys.stderr)
        return 3
    return 0


def new_log_dir(root: Path) -> Path:
    """A new ``root/YYYYmmdd-HHMMSS`` (``-1``, ``-2``, ... when that second is taken): never an existing log."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for k in range(1000):
        path = root / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            path.mkdir()  # atomic: two deploys starting in the same second get different directories
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{root}: 1000 logs already started at {stamp}; pass --out")


def drop_if_empty(log_dir: Path) -> None:
    """Remove a default log directory that holds no record of a run (only its meta.yaml and no events)."""
    events = log_dir / "events.jsonl"
    if {p.name for p in log_dir.iterdir()} <= {"meta.yaml", "events.jsonl"} and not (events.is_file() and events.stat().st_size):
        shutil.rmtree(log_dir, ignore_errors=True)
