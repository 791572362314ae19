"""``make demo``: the whole pipeline on a CPU, as the exact CLI commands a user would type.

Trot logs -> Uni-O4 offline -> PPO fine-tuning in MuJoCo -> export -> sim-to-sim gate (MuJoCo vs
PyBullet) -> deploy against the emulator over the real SDK -> pack the logs -> one session
iteration -> replay. Every step is one ``unio4`` command, run in-process and recorded, and the
demo ends by writing ``RUN_DIR/report.html`` with the curves, tables, plots and those commands.
``DemoScale`` sets the sizes: the default takes minutes on 2 cores; tests use a cut-down one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from unio4.commands import collect, data_pack, deploy, evaluate, export, replay, session, train_offline, train_online
from unio4.commands.options import console
from unio4.sim.config import FORWARD_COMMANDS


@dataclass(frozen=True)
class DemoScale:
    collect_envs: int = 64
    collect_steps: int = 400
    offline: tuple[str, ...] = (
        "critics.steps=4000",
        "bc.steps=3000",
        "bc.lr=0.001",
        "dynamics.max_epochs=5",
        "improvement.steps=300",
        "ope.horizon=50",
        "ope.states=128",
    )
    online_envs: int = 128
    online_iterations: int = 60
    eval_envs: int = 8
    eval_seconds: float = 10.0
    deploy_seconds: float = 10.0
    session_steps: int = 500
    session_rollouts: int = 2  # the session preset runs 10 per iteration; the demo shows the loop, not its learning


TINY = DemoScale(
    collect_envs=8,
    collect_steps=60,
    offline=(
        "critics.steps=100",
        "critics.q_hidden=[32,32]",
        "bc.steps=100",
        "dynamics.max_epochs=1",
        "dynamics.hidden=[32,32]",
        "dynamics.weight_decay=[0,0,0]",
        "improvement.steps=20",
        "ope.horizon=5",
        "ope.states=32",
    ),
    online_envs=4,
    online_iterations=2,
    eval_envs=2,
    eval_seconds=2.0,
    deploy_seconds=3.0,
    session_steps=100,
    session_rollouts=1,
)


def run_command(command: ModuleType, argv: list[str]) -> int:
    """Run one command module on ``argv`` through its own parser (as ``unio4 WORDS... ARGV`` would)."""
    parser = argparse.ArgumentParser(prog="unio4 " + " ".join(command.WORDS), allow_abbrev=False)
    command.add_arguments(parser)
    return int(command.run(parser.parse_args(argv)))


def run_demo(run_dir: Path, scale: DemoScale = DemoScale()) -> int:
    from unio4.sim.emulator import spawn

    out = console()
    out.rule("[bold]unio4 demo (CPU): logged data -> Uni-O4 -> simulation -> emulated robot -> more data")
    run_dir.mkdir(parents=True, exist_ok=True)
    steps: list[dict[str, object]] = []

    def step(title: str, command: ModuleType, argv: list[str]) -> None:
        line = "unio4 " + shlex.join([*command.WORDS, *argv])
        out.print(f"[bold]{len(steps) + 1}.[/] {title}")
        out.print(f"    [dim]{line}[/]", soft_wrap=True, markup=True)  # a command is never cut or wrapped mid-flag
        t0 = time.perf_counter()
        code = run_command(command, argv)
        if code != 0:
            raise RuntimeError(f"demo step {title!r} failed (exit {code}): {line}")
        steps.append({"title": title, "command": line, "seconds": time.perf_counter() - t0})

    d = {k: run_dir / k for k in ("gait.h5", "offline", "online", "bundle", "eval.json", "real", "real.h5", "session", "replay")}
    forward = [x for f in FORWARD_COMMANDS for x in ("--set", f"task.{f}")]
    step(
        "Log the built-in trot in randomised simulation",
        collect,
        ["--num-envs", str(scale.collect_envs), "--steps", str(scale.collect_steps), *forward, "-o", str(d["gait.h5"])],
    )
    offline_args = [x for o in scale.offline for x in ("--set", f"train.{o}")]
    step(
        "Uni-O4 offline: critics, BC ensemble, dynamics + OPE, multi-step improvement",
        train_offline,
        ["--data", str(d["gait.h5"]), "--config", "uni_o4_offline_go1", "--out", str(d["offline"]), *offline_args],
    )
    offline_ckpt = d["offline"] / "checkpoints" / "offline.pt"
    step(
        "Online fine-tuning in MuJoCo from the offline policy and critic",
        train_online,
        [
            "--init",
            str(offline_ckpt),
            "--config",
            "finetune_go1",
            "--num-envs",
            str(scale.online_envs),
            "--iterations",
            str(scale.online_iterations),
            "--out",
            str(d["online"]),
            *forward,
        ],
    )
    final_ckpt = d["online"] / "checkpoints" / "final.pt"
    step("Export the policy bundle (ONNX + manifest)", export, [str(final_ckpt), "-o", str(d["bundle"])])
    step(
        "Sim-to-sim gate: the bundle in MuJoCo and PyBullet",
        evaluate,
        [
            str(d["bundle"]),
            "--num-envs",
            str(scale.eval_envs),
            "--seconds",
            str(scale.eval_seconds),
            *forward,
            "--out",
            str(d["eval.json"]),
        ],
    )
    emulator, port = spawn(["--lockstep"])
    try:
        step(
            "Deploy against the emulated Go1 over the real SDK",
            deploy,
            [
                str(d["bundle"]),
                "--robot",
                f"127.0.0.1:{port}",
                "--local-port",
                "0",
                "--duration",
                str(scale.deploy_seconds),
                "--command",
                "0.6,0,0",
                "--out",
                str(d["real"] / "001"),
            ],
        )
        step("Pack the robot logs (rewards from raw state)", data_pack, [str(d["real"] / "001"), "-o", str(d["real.h5"])])
        session_args = ["--out", str(d["session"]), "--init", str(final_ckpt), "--no-prompt", "--set", f"session.robot=127.0.0.1:{port}"]
        session_args += ["--set", "session.local_port=0", "--set", "session.iterations=1", "--set", f"session.steps={scale.session_steps}"]
        session_args += ["--set", f"session.rollouts={scale.session_rollouts}"]
        session_args += ["--set", f"session.gate.num_envs={scale.eval_envs}", "--set", f"session.gate.seconds={scale.eval_seconds / 2}"]
        step("One on-robot fine-tuning session iteration", session, session_args)
    finally:
        emulator.send_signal(signal.SIGINT)
        emulator.wait(timeout=20)
    step("Replay the robot log open loop in simulation", replay, [str(d["real"] / "001"), "--mode", "sim", "-o", str(d["replay"])])
    report = write_report(run_dir, d, steps, offline_ckpt, final_ckpt, scale)
    out.print(f"[bold green]report:[/] {report}")
    return 0


def _policy_table(offline_ckpt: Path, final_ckpt: Path, scale: DemoScale) -> dict[str, dict[str, float]]:
    """Deterministic evaluation of the offline and fine-tuned policies (the offline -> online transition)."""
    from unio4.learning.checkpoint import load_checkpoint
    from unio4.learning.evaluate import evaluate_policy
    from unio4.learning.export import actor_from_checkpoint
    from unio4.sim.config import load_task_config
    from unio4.sim.task import Go1VelocityTask

    env = Go1VelocityTask(load_task_config("go1_flat", FORWARD_COMMANDS), scale.eval_envs, seed=1)
    steps = int(scale.eval_seconds / env.dt)
    rows = {
        name: evaluate_policy(actor_from_checkpoint(load_checkpoint(p), str(p)), env, steps)
        for name, p in (("Uni-O4 offline", offline_ckpt), ("after online fine-tuning", final_ckpt))
    }
    env.close()
    return rows


def _timing_histogram(log_dir: Path, out: Path) -> tuple[Path, dict[str, float]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unio4.deploy.rollout_log import read_log

    log = read_log(log_dir).arrays
    period_ms = np.diff(log["time"]) * 1000.0
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(period_ms, bins=50)
    ax.set_xlabel("policy period (ms), target 20")
    ax.set_ylabel("steps")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    stats = {"p50": float(np.percentile(period_ms, 50)), "p99": float(np.percentile(period_ms, 99)), "max": float(period_ms.max())}
    return out, stats


def _velocity_plot(data_path: Path, out: Path, dt: float) -> tuple[Path, float, float]:
    """Commanded vs measured (leg-odometry) forward velocity of the deploy log; returns the plot and the
    mean commanded and measured velocity over the second half."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unio4.learning.data.dataset import load_dataset

    data = load_dataset(data_path)
    command = data.infos["command"][:, 0].numpy()
    measured = data.infos["base_lin_vel_estimate"][:, 0].numpy()
    t = np.arange(len(command)) * dt
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.plot(t, command, label="commanded vx")
    ax.plot(t, measured, label="measured vx (leg odometry)", alpha=0.8)
    ax.set_xlabel("time since the policy started (s)")
    ax.set_ylabel("m/s")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    half = len(command) // 2
    return out, float(command[half:].mean()), float(measured[half:].mean())


def _embed(path: Path) -> str:
    """An <img> whose picture is inside the page (the report stays whole when copied or mailed)."""
    import base64

    kind = "gif" if path.suffix == ".gif" else "png"
    return f"<img src='data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}'>"


def _pretrained_clip(out: Path) -> Path | None:
    """A few frames of the shipped pretrained policy walking (None when the checkout has no pretrained bundle)."""
    from unio4.sim.config import load_task_config
    from unio4.sim.play import bundle_factory, play

    bundle = Path(__file__).resolve().parents[1] / "pretrained" / "go1_flat"
    if not (bundle / "manifest.yaml").is_file():
        return None
    result = play(bundle_factory(bundle), load_task_config("go1_flat"), (0.8, 0.0, 0.0), 3.0, out, size=(320, 240), fps=10)
    return result.video


# Curves measured at full scale and kept in docs/img (docs/benchmarks.md has the commands): shown
# in the report beside the demo's own small-scale curves.
MEASURED_CURVES = (
    ("Time to walk: PPO from scratch, 3 seeds, 256 robots, 2 CPU cores", "time_to_walk.png"),
    ("Uni-O4 (offline on trot logs, then online) against PPO from scratch that walks", "go1_uni_o4_vs_scratch.png"),
)


def _measured_curves() -> list[str]:
    docs = Path(__file__).resolve().parents[1] / "docs" / "img"
    found = [(title, docs / name) for title, name in MEASURED_CURVES if (docs / name).is_file()]
    if not found:
        return []
    return ["<h2>Measured benchmarks (docs/benchmarks.md)</h2>", *(f"<p>{title}</p>{_embed(path)}" for title, path in found)]


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(
    run_dir: Path, d: dict[str, Path], steps: list[dict[str, object]], offline_ckpt: Path, final_ckpt: Path, scale: DemoScale
) -> Path:
    """``report.html``, self-contained (pictures embedded): summary first, then every stage."""
    from unio4.learning.curves import read_history

    policies = _policy_table(offline_ckpt, final_ckpt, scale)
    evals = json.loads(d["eval.json"].read_text())
    hist, timing = _timing_histogram(d["real"] / "001", run_dir / "deploy_timing.png")
    velocity, commanded, measured = _velocity_plot(d["real.h5"], run_dir / "deploy_velocity.png", dt=0.02)
    clip = _pretrained_clip(run_dir / "pretrained_walk.gif")
    online = [r for r in read_history(d["online"] / "metrics.jsonl") if "reward/step" in r]
    session_rows = json.loads((d["session"] / "state.json").read_text())["rows"]
    keys = ("reward/step", "reward/tracking_lin_vel", "terminations")
    worst = max(evals.values(), key=lambda r: r["lin_vel_error"])
    falls = max(r["falls_per_robot_minute"] for r in evals.values())
    walks = worst["lin_vel_error"] <= 0.25 and falls == 0.0
    verdict = "walks" if walks else "does not walk well enough yet"
    summary = (
        f"<p><b>The fine-tuned policy {verdict}</b> over its trained commands (forward 0.4-1.0 m/s): lin-vel error "
        + ", ".join(f"{e} {r['lin_vel_error']:.3f} m/s" for e, r in evals.items())
        + f"; falls per robot-minute {falls:.2f} (the gate's bar: 0.25 m/s, 0 falls). On the emulated Go1 over the real SDK it was "
        f"commanded {commanded:.2f} m/s and moved at {measured:.2f} m/s (leg odometry, second half of the run). "
        f"The whole demo took {sum(float(str(s['seconds'])) for s in steps) / 60:.1f} minutes.</p>"
    )
    sections = [
        "<h1>unio4 demo report</h1>",
        f"<p>torch {torch.__version__}, CPU. Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>",
        "<h2>Summary</h2>",
        summary,
        "<h2>Learning curves</h2>",
        f"<p>Offline (Uni-O4 stages, each against its own counter)</p>{_embed(d['offline'] / 'offline_curves.png')}",
        f"<p>Online fine-tuning (MuJoCo, {scale.online_envs} envs)</p>{_embed(d['online'] / 'curves.png')}",
        "<h2>Offline -> online transition</h2>",
        _table(["policy", *keys], [[name, *(f"{r.get(k, 0.0):.5f}" for k in keys)] for name, r in policies.items()]),
        f"<p>Online reward/step: first iteration {online[0]['reward/step']:.5f}, last {online[-1]['reward/step']:.5f}.</p>"
        if online
        else "",
        "<h2>Sim-to-sim gate</h2>",
        _table(
            ["engine", "lin vel error (m/s)", "yaw rate error (rad/s)", "falls / robot-minute", "power (W)"],
            [
                [e, f"{r['lin_vel_error']:.3f}", f"{r['yaw_rate_error']:.3f}", f"{r['falls_per_robot_minute']:.2f}", f"{r['power']:.1f}"]
                for e, r in evals.items()
            ],
        ),
        "<h2>Deploy against the emulator: timing</h2>",
        "<p>The demo's emulator runs in lockstep (its clock drives the runtime), so this shows the schedule, not OS jitter; "
        "<code>unio4 bench deploy BUNDLE</code> measures jitter against the real-time emulator.</p>",
        f"<p>Policy period p50 {timing['p50']:.2f} ms, p99 {timing['p99']:.2f} ms, max {timing['max']:.2f} ms.</p>{_embed(hist)}",
        "<h2>Deploy against the emulator: commanded vs measured velocity</h2>",
        _embed(velocity),
        "<h2>Session iteration</h2>",
        _table(
            ["iteration", "steps", "logged return", "gate error current -> new", "gate falls current -> new", "accepted", "why not"],
            [
                [
                    str(r["iteration"]),
                    str(r["steps"]),
                    f"{r['logged_return']:.3f}",
                    f"{r['gate_error_old']:.3f} -> {r['gate_error_new']:.3f}",
                    f"{r.get('gate_falls_old', float('nan')):.2f} -> {r['gate_falls_new']:.2f}",
                    str(r["accepted"]),
                    str(r.get("gate_refused", "")),
                ]
                for r in session_rows
            ],
        ),
        "<h2>Replay: simulation vs log</h2>",
        _embed(d["replay"] / "replay_sim.png"),
        *(["<h2>The shipped pretrained policy (pretrained/go1_flat) walking, 0.8 m/s</h2>", _embed(clip)] if clip else []),
        *_measured_curves(),
        "<h2>Every step by hand</h2>",
        _table(["step", "command", "seconds"], [[str(s["title"]), f"<code>{s['command']}</code>", f"{s['seconds']:.1f}"] for s in steps]),
    ]
    style = (
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{border:1px solid #ccc;padding:4px}"
        "table{border-collapse:collapse}img{max-width:100%}</style>"
    )
    out = run_dir / "report.html"
    out.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>unio4 demo</title>{style}</head><body>{''.join(sections)}</body></html>"
    )
    return out
