"""``unio4 bench deploy``: runtime timing (jitter, inference, late ticks) against the real-time emulator."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from unio4.commands.options import console, velocity

WORDS = ("bench", "deploy")
HELP = "runtime timing (jitter, inference, late ticks) against the real-time emulator"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="policy bundle directory")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of policy control")
    p.add_argument("--command", dest="command_vel", default="0.3,0,0", metavar="VX,VY,YAW")
    p.add_argument("--realtime-priority", type=int, default=0, help="SCHED_FIFO priority of the control thread (0: off)")
    p.add_argument("--rerun", default=None, metavar="ADDR", help="also stream the run to a Rerun viewer at HOST[:PORT]")
    p.add_argument("--rerun-save", default=None, metavar="FILE.rrd", help="also stream the run to this Rerun file")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from unio4.deploy.bench import bench_deploy
    from unio4.sim import emulator

    vel = velocity(args.command_vel)
    if args.rerun is not None or args.rerun_save is not None:
        from unio4.deploy.rerun_stream import require_rerun

        require_rerun()
    print(f"bench deploy: {args.bundle} against the real-time emulator for {args.duration:.0f} s of policy control ...", flush=True)
    proc, port = emulator.spawn()
    try:
        save = Path(args.rerun_save) if args.rerun_save else None
        timing = bench_deploy(Path(args.bundle), "127.0.0.1", port, args.duration, vel, args.realtime_priority, args.rerun, save)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    emulator_line = out.strip().splitlines()[-1] if out.strip() else ""
    table = Table(title=f"unio4 bench deploy ({timing['policy_steps']} policy steps, ended by {timing['reason']})")
    for col in ("loop", "measure", "p50 ms", "p99 ms", "max ms", "count"):
        table.add_column(col, justify="right")
    rows = [
        ("policy 50 Hz", "period error", "policy_period_error"),
        ("policy 50 Hz", "onnxruntime inference", "inference"),
        ("I/O 500 Hz", "wake-up error", "io_wake_error"),
        ("I/O 500 Hz", "period error", "io_period_error"),
    ]
    for loop, measure, key in rows:
        s = timing[key]
        table.add_row(loop, measure, f"{s['p50_ms']:.3f}", f"{s['p99_ms']:.3f}", f"{s['max_ms']:.3f}", str(s["count"]))
    console().print(table)
    print(f"policy: missed 20 ms deadlines {timing['policy_missed_deadlines']}")
    print(f"I/O: late ticks (> 0.5 ms) {timing['io_late_ticks']}, missed ticks {timing['io_missed_ticks']}")
    if "rerun" in timing:
        r = timing["rerun"]
        print(f"rerun: {r['sent']} of {r['steps']} steps sent, {r['dropped']} dropped" + (f"; stopped: {r['error']}" if r["error"] else ""))
    print(emulator_line)
    return 0
