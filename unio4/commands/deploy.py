"""``unio4 deploy``: run a policy bundle on a Go1 (or the emulator) at 50 Hz through the SDK, with safety."""

from __future__ import annotations

import argparse
import sys

from unio4.commands.options import add_out, add_set, host_port, overrides

WORDS = ("deploy",)
HELP = "run a policy bundle on a Go1 (or the emulator) at 50 Hz through the SDK, with safety"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="policy bundle directory (unio4 export)")
    p.add_argument("--robot", default="192.168.123.10:8007", help="IP[:PORT] of the robot's low-level controller")
    p.add_argument("--local-port", type=int, default=8080, help="local UDP port of the SDK (0: any)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of policy control after the stand-up")
    add_out(p, "write a crash-safe rollout log to this directory")
    p.add_argument("--explore", action="store_true", help="sample actions (seeded) and log log-probs, for on-robot fine-tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--command", dest="command_vel", default=None, metavar="VX,VY,YAW", help="fixed velocity command (default: remote)")
    p.add_argument("--estop", default=None, metavar="URL", help="serial e-stop port or pyserial URL")
    p.add_argument("--config", default="go1", help="runtime preset in configs/deploy/ or a YAML path")
    add_set(p, "runtime.safety.max_tilt_rad=0.6", "runtime")


def run(args: argparse.Namespace) -> int:
    from unio4.configs.loader import load, resolve_config_path
    from unio4.deploy.bundle import load_bundle
    from unio4.deploy.runtime import RuntimeConfig, run_bundle

    runtime_sets = overrides(args, "runtime")
    if args.command_vel is not None:
        runtime_sets.append(f"command=[{args.command_vel}]")
    if args.estop is not None:
        runtime_sets.append(f"estop.url={args.estop}")
    cfg = load(RuntimeConfig, resolve_config_path(args.config, "deploy"), runtime_sets)
    bundle = load_bundle(args.bundle)
    host, port = host_port(args.robot, 8007)
    mode = "explore" if args.explore else "deterministic"
    print(f"deploy: {args.bundle} -> udp://{host}:{port}, {mode}, {args.duration:.1f} s", flush=True)
    result = run_bundle(bundle, host, port, cfg, args.duration, args.local_port, args.out, args.explore, args.seed)
    t = result.timing
    print(f"deploy: {result.policy_steps} policy steps; ended by {result.reason}; damping held {cfg.damping_hold_s:.1f} s")
    print(f"  inference     p50 {t['inference']['p50_ms']:.3f} ms  p99 {t['inference']['p99_ms']:.3f} ms")
    print(f"  policy period error p99 {t['policy_period_error']['p99_ms']:.3f} ms, missed deadlines {t['policy_missed_deadlines']}")
    print(f"  I/O wake error p99 {t['io_wake_error']['p99_ms']:.3f} ms, late ticks {t['io_late_ticks']}, missed {t['io_missed_ticks']}")
    if result.safety_stop:
        print(f"deploy: SAFETY STOP: {result.reason}", file=sys.stderr)
        return 3
    return 0
