"""The ``unio4`` command line: one entry point for every stage of the pipeline."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from configs.loader import ConfigError
from sim.backends import BACKENDS

Handler = Callable[[argparse.Namespace], int]


def _add_overrides(p: argparse.ArgumentParser, flag: str, dest: str, example: str) -> None:
    """A repeatable ``flag KEY=VALUE`` that overrides one field of a YAML config."""
    help_text = f"override a config field, e.g. {flag} {example} (repeatable)"
    p.add_argument(flag, dest=dest, action="append", default=[], metavar="KEY=VALUE", help=help_text)


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="go1_flat", help="task preset in configs/task/ or a YAML path (default: go1_flat)")
    _add_overrides(p, "--set", "overrides", "commands.lin_vel_x=[0,1]")
    p.add_argument("--backend", default="mujoco", choices=BACKENDS, help="physics backend (default: mujoco)")
    p.add_argument("--num-envs", type=int, default=64, help="number of parallel robots (train online --env: default 1)")
    p.add_argument("--seed", type=int, default=0)


def cmd_sim_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sim.bench import bench_task
    from sim.config import load_task_config

    cfg = load_task_config(args.task, args.overrides)
    table = Table(title=f"unio4 sim bench ({args.task})")
    for col in ("backend", "envs", "policy steps/s", "physics steps/s", "raw policy steps/s", "task overhead"):
        table.add_column(col, justify="right")
    for n in args.num_envs_list or [args.num_envs]:
        r = bench_task(cfg, args.backend, n, steps=args.steps, seed=args.seed, num_threads=args.threads)
        table.add_row(
            r.backend,
            str(n),
            f"{r.policy_steps_per_s:,.0f}",
            f"{r.physics_steps_per_s:,.0f}",
            f"{r.raw_policy_steps_per_s:,.0f}",
            f"{100 * r.task_overhead:.1f} %",
        )
    Console().print(table)
    return 0


def cmd_sim_gait(args: argparse.Namespace) -> int:
    from sim.config import load_task_config
    from sim.gait import walk
    from sim.task import Go1VelocityTask

    overrides = [f"commands.lin_vel_x=[{args.vx},{args.vx}]", "commands.lin_vel_y=[0,0]", "commands.ang_vel_yaw=[0,0]", *args.overrides]
    cfg = load_task_config(args.task, overrides)
    task = Go1VelocityTask(cfg, args.num_envs, backend=args.backend, seed=args.seed)
    result = walk(task, args.seconds)
    task.close()
    distance, fell = result.distance, result.fell
    print(
        f"trot at vx={args.vx} m/s for {args.seconds:.0f} s over {args.num_envs} randomised robots: "
        f"distance min {distance.min():.2f} m, mean {distance.mean():.2f} m, falls {int(fell.sum())}"
    )
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from learning.data.collect import collect
    from sim.config import load_task_config
    from sim.policies import bundle_policy, gait_policy
    from sim.task import Go1VelocityTask

    task = Go1VelocityTask(load_task_config(args.task, args.overrides), args.num_envs, backend=args.backend, seed=args.seed)
    if args.policy == "gait":
        policy, source = gait_policy(task), "gait"
    else:
        policy, source = bundle_policy(args.policy, task, explore=args.explore, seed=args.seed), f"bundle:{args.policy}"
    data = collect(task, policy, args.steps, seed=args.seed, source=source, show_progress=True)
    task.close()
    data.save(Path(args.out))
    episodes = int((data.terminals | data.timeouts).sum())
    print(
        f"wrote {args.out}: {len(data)} transitions, {episodes} episodes, {int(data.terminals.sum())} terminals, "
        f"mean reward {float(data.rewards.mean()):+.4f}"
    )
    return 0


def cmd_train_bc(args: argparse.Namespace) -> int:
    from configs.loader import load, resolve_config_path
    from learning.data.dataset import dataset_action_bound, load_dataset
    from learning.offline.bc import BCConfig, save_bc_checkpoint, train_bc

    cfg = load(BCConfig, resolve_config_path(args.config, "train"), args.train_overrides)
    data = load_dataset(args.data)
    ensemble, template, history = train_bc(data, cfg, dataset_action_bound(data), show_progress=True)
    save_bc_checkpoint(Path(args.out), ensemble, template, cfg, data)
    print(f"wrote {args.out}: {cfg.members} member(s), final negative log-likelihood {history[-1]['nll']:.3f}")
    return 0


def cmd_train_online(args: argparse.Namespace) -> int:
    from configs.loader import load, resolve_config_path, to_dict
    from learning.distributed import init_from_env, shutdown
    from learning.online import OnlineConfig, VectorEnv, load_init, train_online

    ctx = init_from_env()  # under torchrun: this process's rank; each rank steps its own environments

    overrides = [*args.train_overrides, *([f"iterations={args.iterations}"] if args.iterations is not None else [])]
    cfg = load(OnlineConfig, resolve_config_path(args.config or ("uni_o4_online" if args.env else "ppo_go1"), "train"), overrides)
    init = None
    if args.init:
        init, cfg = load_init(args.init, cfg)
    run_dir = Path(args.run_dir)
    env: VectorEnv
    if args.env:  # a Gymnasium task
        from learning.evaluate import evaluate_gym
        from learning.gym_env import GymVectorEnv

        num_envs = args.num_envs or 1
        env = GymVectorEnv(args.env, num_envs, seed=args.seed + ctx.rank * num_envs)
        extra = {"env": args.env, "init": str(args.init) if args.init else None}
        result = train_online(
            env, cfg, run_dir, resume=args.resume, init=init, extra_state=extra, ctx=ctx,
            evaluator=lambda actor: evaluate_gym(actor, args.env, args.eval_episodes, seed=10_000),
        )  # fmt: skip
    else:  # the Go1 task
        from sim.config import load_task_config
        from sim.task import Go1VelocityTask

        task_cfg = load_task_config(args.task, args.overrides)
        num_envs = args.num_envs or 64
        from learning.online import rank_device

        device = rank_device(cfg.device, ctx)  # the task lives where the networks do
        env = Go1VelocityTask(task_cfg, num_envs, backend=args.backend, seed=args.seed + ctx.rank * num_envs, device=device)
        extra = {"task_config": to_dict(task_cfg), "backend": args.backend, "init": str(args.init) if args.init else None}
        evaluator = eval_task = None
        if cfg.eval_interval and ctx.is_main:  # the mean action on its own robots: same commands, pushes and dynamics every time
            from learning.evaluate import evaluate_policy

            eval_task = Go1VelocityTask(task_cfg, args.eval_envs, backend=args.backend, seed=10_000, device=device)
            eval_steps = int(round(args.eval_seconds / eval_task.dt))

            def evaluator(actor):  # type: ignore[no-untyped-def]
                return evaluate_policy(actor, eval_task, eval_steps, seed=10_000)

        result = train_online(env, cfg, run_dir, resume=args.resume, init=init, extra_state=extra, ctx=ctx, evaluator=evaluator)
        if eval_task is not None:
            eval_task.close()
    env.close()  # type: ignore[attr-defined]
    shutdown(ctx)
    if not ctx.is_main:
        return 0
    last = next((row for row in reversed(result.history) if "reward/step" in row), {})
    evals = [row for row in result.history if "eval/return" in row]
    if evals:
        print(f"evaluation return: first {evals[0]['eval/return']:.1f}, last {evals[-1]['eval/return']:.1f}")
    evals = [row for row in result.history if "eval/reward/step" in row]
    if evals:
        print(f"evaluation reward/step: first {evals[0]['eval/reward/step']:+.4f}, last {evals[-1]['eval/reward/step']:+.4f}")
    print(
        f"done: final reward/step {last.get('reward/step', float('nan')):+.4f}, "
        f"checkpoint {result.checkpoint}, curves {run_dir / 'curves.png'}, TensorBoard {run_dir / 'tb'}"
    )
    return 0


def cmd_train_offline(args: argparse.Namespace) -> int:
    from configs.loader import load, resolve_config_path
    from learning.data.dataset import load_dataset
    from learning.offline.pipeline import OfflineConfig, train_offline

    cfg = load(OfflineConfig, resolve_config_path(args.config, "train"), args.train_overrides)
    data = load_dataset(args.data)
    scorer = None
    if cfg.selection == "online":
        if not args.env:
            raise ValueError("selection 'online' evaluates candidates in a real environment: pass --env")
        from learning.evaluate import evaluate_gym

        def scorer(actors: list) -> list[float]:  # type: ignore[type-arg]
            return [evaluate_gym(a, args.env, cfg.online_episodes, seed=20_000)["return"] for a in actors]

    result = train_offline(data, cfg, Path(args.run_dir), resume=args.resume, online_scorer=scorer)
    print(f"selected member {result.member} by {'OPE' if cfg.selection == 'ope' else 'OPE top-k + online returns'}")
    for i, (start, best, acc) in enumerate(zip(result.ope_initial, result.ope_best, result.accepted)):
        print(f"  member {i}: OPE {start:.3f} (BC) -> {best:.3f}, {acc} accepted improvement(s)")
    if args.env:
        from learning.checkpoint import load_checkpoint
        from learning.evaluate import evaluate_gym
        from learning.export import actor_from_checkpoint

        actor = actor_from_checkpoint(load_checkpoint(result.checkpoint), str(result.checkpoint))
        scores = evaluate_gym(actor, args.env, args.eval_episodes, seed=10_000)
        print("  evaluation of the selected policy: " + ", ".join(f"{k} {v:.1f}" for k, v in scores.items()))
    print(f"wrote {result.checkpoint} (init for: unio4 train online --init {result.checkpoint})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from deploy.bundle import load_bundle
    from learning.export import export_bundle

    out = export_bundle(args.checkpoint, args.out)
    bundle = load_bundle(out, robot=None)  # verify what was written, as the robot will
    files = ", ".join(f"{name} sha256 {digest[:12]}" for name, digest in bundle.manifest["files"].items())
    print(f"wrote {out}: observation {bundle.obs_size}, action {bundle.act_size}, robot {bundle.manifest['robot']}; {files}")
    return 0


def cmd_robot_export(args: argparse.Namespace) -> int:
    from robots.description import load_robot
    from robots.mjcf import build_mjcf
    from robots.urdf import build_urdf

    robot = load_robot(args.robot)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{robot.name}.xml").write_text(build_mjcf(robot))
    (out / f"{robot.name}.urdf").write_text(build_urdf(robot))
    print(f"wrote {out / (robot.name + '.xml')} and {out / (robot.name + '.urdf')}")
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    from sim.emulator import Emulator, EmulatorConfig, FaultConfig

    faults = FaultConfig(
        state_loss=args.state_loss,
        delay_ticks=args.delay_ticks,
        bad_crc=args.bad_crc,
        noise_std=args.noise,
        push_interval_s=args.push_every,
        push_speed=args.push_speed,
        fall_at_s=args.fall_at,
        stop_combo_at_s=args.stop_combo_at,
        freeze_at_s=args.freeze_at,
        nan_at_s=args.nan_at,
    )
    cfg = EmulatorConfig(host=args.host, port=args.port, lockstep=args.lockstep, physics=args.physics, seed=args.seed, faults=faults)
    Emulator(cfg).serve(duration_s=args.duration, trace=Path(args.trace) if args.trace else None)
    return 0


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.partition(":")
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise ValueError(f"--robot {text!r}: expected IP[:PORT]") from None


def cmd_deploy(args: argparse.Namespace) -> int:
    from configs.loader import load, resolve_config_path
    from deploy.bundle import load_bundle
    from deploy.runtime import RuntimeConfig, run_bundle

    overrides = list(args.overrides)
    if args.command_vel is not None:
        overrides.append(f"command=[{args.command_vel}]")
    if args.estop is not None:
        overrides.append(f"estop.url={args.estop}")
    cfg = load(RuntimeConfig, resolve_config_path(args.config, "deploy"), overrides)
    bundle = load_bundle(args.bundle)
    host, port = _host_port(args.robot, 8007)
    mode = "explore" if args.explore else "deterministic"
    print(f"deploy: {args.bundle} -> udp://{host}:{port}, {mode}, {args.duration:.1f} s", flush=True)
    result = run_bundle(bundle, host, port, cfg, args.duration, args.local_port, args.log_dir, args.explore, args.seed)
    t = result.timing
    print(f"deploy: {result.policy_steps} policy steps; ended by {result.reason}; damping held {cfg.damping_hold_s:.1f} s")
    print(f"  inference     p50 {t['inference']['p50_ms']:.3f} ms  p99 {t['inference']['p99_ms']:.3f} ms")
    print(f"  policy period error p99 {t['policy_period_error']['p99_ms']:.3f} ms, missed deadlines {t['policy_missed_deadlines']}")
    print(f"  I/O wake error p99 {t['io_wake_error']['p99_ms']:.3f} ms, late ticks {t['io_late_ticks']}, missed {t['io_missed_ticks']}")
    if result.safety_stop:
        print(f"deploy: SAFETY STOP: {result.reason}", file=sys.stderr)
        return 3
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from sim.config import load_task_config
    from sim.evaluate import evaluate_bundle

    cfg = load_task_config(args.task, args.overrides)
    rows = {b: evaluate_bundle(args.bundle, cfg, b, args.num_envs, args.seconds, seed=args.seed) for b in args.backend}
    table = Table(title=f"unio4 eval {args.bundle} ({args.num_envs} randomised robots x {args.seconds:.0f} s, task {args.task})")
    for col in ("backend", "lin vel error m/s", "yaw rate error rad/s", "falls / robot-minute", "power W"):
        table.add_column(col, justify="right")
    for backend, r in rows.items():
        table.add_row(
            backend, f"{r['lin_vel_error']:.3f}", f"{r['yaw_rate_error']:.3f}", f"{r['falls_per_robot_minute']:.2f}", f"{r['power']:.1f}"
        )
    Console().print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    out = Path(args.out or Path(args.run) / "replay")
    if args.mode == "robot":  # the deploy path: no torch
        from configs.loader import load, resolve_config_path
        from deploy.replay import replay_on_robot
        from deploy.runtime import RuntimeConfig

        if not args.robot:
            raise ValueError("--mode robot needs --robot IP[:PORT] (the robot, or unio4 emulate)")
        cfg = load(RuntimeConfig, resolve_config_path(args.config, "deploy"), args.overrides)
        host, port = _host_port(args.robot, 8007)
        robot = replay_on_robot(args.run, host, port, cfg, args.gain_scale, out / "robot", args.local_port)
        print(f"replayed {robot.steps} logged targets at {args.gain_scale:.2f} x gains; ended by {robot.result.reason}")
        first, whole = robot.rms_first_second, robot.rms_joint_error
        print(f"  joint angle RMS error vs the log: first second {first:.3f} rad, all {whole:.3f} rad")
        print(f"  replay log: {robot.log_dir}")
        return 1 if robot.result.safety_stop else 0
    from sim.replay import plot_log, replay_in_sim

    if args.mode == "plot":
        for path in plot_log(args.run, out):
            print(f"wrote {path}")
        return 0
    r = replay_in_sim(args.run, out, backend=args.backend, render=args.render)
    legs = "  ".join(f"{leg} {v:.3f}" for leg, v in r.rms_first_second.items() if leg != "all")
    print(f"open-loop replay of {len(r.sim_joint_pos)} logged policy steps in {args.backend}:")
    print(f"  joint angle RMS error, first second: {r.rms_first_second['all']:.3f} rad ({legs})")
    print(f"  joint angle RMS error, whole log:    {r.rms_all['all']:.3f} rad; roll/pitch RMS error {r.roll_pitch_rms:.3f} rad")
    print(f"  plot: {r.plot}")
    if r.strip is not None:
        print(f"  pictures (log | sim): {r.strip}, {r.animation}")
    return 0


def cmd_session(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from configs.loader import load, resolve_config_path
    from learning.session import CONFIG_FILE, TASK_FILE, Session, SessionConfig
    from sim.config import load_task_config

    root = Path(args.dir)
    resuming = (root / "state.json").is_file()
    stored, stored_task = root / CONFIG_FILE, root / TASK_FILE
    config_path = stored if resuming and stored.is_file() and args.config is None else resolve_config_path(args.config or "go1", "session")
    task_path = stored_task if resuming and stored_task.is_file() and args.task is None else (args.task or "go1_flat")
    session = Session(root, load(SessionConfig, config_path, args.overrides), load_task_config(task_path, args.task_overrides))
    if not resuming:
        if not args.init:
            raise ValueError(f"{root}: no session here yet; start one with --init CHECKPOINT")
        session.start(Path(args.init))
    else:
        print(f"resuming {root}: iteration {session.state.iteration}, phase {session.state.phase}")
    if args.no_prompt:  # for this run only: the stored settings keep the operator prompts
        session.cfg = dataclasses.replace(session.cfg, prompt=False)
    rows = session.run(stop_after_phase=args.stop_after)
    table = Table(title=f"unio4 session {root}")
    columns = ("iteration", "steps", "logged return", "tracking / step", "gate error (first / current -> new)", "gate falls", "stops")
    for col in (*columns, "accepted"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["iteration"]), str(r["steps"]), f"{r['logged_return']:.3f}", f"{r['tracking_per_step']:.4f}",
            f"{r.get('gate_error_start', float('nan')):.3f} / {r['gate_error_old']:.3f} -> {r['gate_error_new']:.3f}",
            f"{r['gate_falls_new']:.2f}", str(r.get("safety_stops", "")), "yes" if r["accepted"] else "no",
        )  # fmt: skip
    Console().print(table)
    print(f"current bundle: {session.state.bundle}")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from deploy.flash import SshTarget, current_version, flash, rollback

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
    name = flash(args.bundle, target, keep=args.keep)
    assert current_version(target) == name
    print(f"flashed {args.bundle} -> {args.host}:{args.remote_dir}/versions/{name} (sha256 verified on the robot; current -> {name})")
    return 0


def cmd_data_pack(args: argparse.Namespace) -> int:
    from learning.data.pack import pack_runs
    from sim.config import load_task_config

    dataset = pack_runs([Path(r) for r in args.runs], load_task_config(args.task, args.overrides), args.stance_force)
    out = Path(args.out)
    dataset.save(out)
    ret = float(dataset.rewards.sum()) / max(1, int((dataset.terminals | dataset.timeouts).sum()))
    print(f"wrote {out}: {len(dataset)} steps from {len(args.runs)} run(s), mean return {ret:.3f}")
    for note in dataset.metadata["notes"]:
        print(f"  note: {note}")
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    from configs.loader import load, resolve_config_path
    from learning.data.generate import GenerateConfig, generate

    cfg = load(GenerateConfig, resolve_config_path(args.config, "data"), args.overrides)
    workdir = Path(args.workdir or f"runs/generate/{args.env}-seed{cfg.seed}")
    data = generate(args.env, args.level, cfg, workdir)
    data.save(Path(args.out))
    episodes = int((data.terminals | data.timeouts).sum())
    mean_return = float(data.rewards.sum()) / max(1, episodes)
    print(f"wrote {args.out}: {len(data)} transitions, {episodes} episodes, mean episode return {mean_return:.1f}")
    return 0


def cmd_bench_deploy(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from deploy.bench import bench_deploy
    from sim import emulator

    command = tuple(float(x) for x in args.command_vel.split(","))
    if len(command) != 3:
        raise ValueError(f"--command {args.command_vel!r}: expected VX,VY,YAW")
    print(f"bench deploy: {args.bundle} against the real-time emulator for {args.duration:.0f} s of policy control ...", flush=True)
    proc, port = emulator.spawn()
    try:
        vel = (command[0], command[1], command[2])
        timing = bench_deploy(Path(args.bundle), "127.0.0.1", port, args.duration, vel, args.realtime_priority)
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
    Console().print(table)
    print(f"policy: missed 20 ms deadlines {timing['policy_missed_deadlines']}")
    print(f"I/O: late ticks (> 0.5 ms) {timing['io_late_ticks']}, missed ticks {timing['io_missed_ticks']}")
    print(emulator_line)
    return 0


def cmd_bench_learning(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from configs.loader import load, resolve_config_path
    from learning.bench import bench_learning, synthetic_dataset
    from learning.data.dataset import load_dataset
    from learning.offline.pipeline import OfflineConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load(OfflineConfig, resolve_config_path(args.config, "train"), args.train_overrides)
    if args.data:
        data = load_dataset(args.data)
    else:
        obs_dim, act_dim = (int(x) for x in args.shape.split(","))
        data = synthetic_dataset(args.transitions, obs_dim, act_dim)
    r = bench_learning(data, cfg, args.steps)
    table = Table(title=f"unio4 bench learning ({args.config}, {len(data)} transitions, {torch.get_num_threads()} threads, {cfg.device})")
    table.add_column("stage")
    table.add_column("gradient steps/s", justify="right")
    table.add_row(
        f"critics ({cfg.critics.mode}, Q {list(cfg.critics.q_hidden)}, batch {cfg.critics.batch_size})", f"{r.critic_steps_per_s:,.1f}"
    )
    table.add_row(f"BC ensemble, batched ({cfg.bc.members} members)", f"{r.bc_batched_steps_per_s:,.1f}")
    table.add_row(f"BC ensemble, batched, {cfg.bc.regularizer} regulariser", f"{r.bc_regularized_steps_per_s:,.1f}")
    table.add_row(f"BC, {cfg.bc.members} members one after another", f"{r.bc_sequential_steps_per_s:,.1f}")
    table.add_row(f"policy improvement ({cfg.bc.members} members)", f"{r.improvement_steps_per_s:,.1f}")
    Console().print(table)
    print(f"batched ensemble speed-up over sequential members: {r.ensemble_speedup:.2f}x")
    print(f"dynamics ensemble: {r.dynamics_epoch_s:.2f} s per epoch; one AM-Q evaluation (horizon {cfg.ope.horizon}): {r.ope_eval_s:.2f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from unio4.demo import TINY, DemoScale, run_demo

    scale = TINY if args.quick else replace(DemoScale(), online_iterations=args.iterations, online_envs=args.num_envs)
    return run_demo(Path(args.run_dir), scale)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unio4", description="Uni-O4 for the Unitree Go1: logged data -> policy -> sim -> robot.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("sim", help="simulate the Go1 task: benchmarks, the built-in gait").add_subparsers(
        dest="sim_command", required=True
    )
    p = sim.add_parser("bench", help="policy and physics steps/s of a backend")
    _add_task_args(p)
    p.set_defaults(num_envs=256)
    p.add_argument("--num-envs-list", type=int, nargs="+", help="several env counts in one table")
    p.add_argument("--steps", type=int, default=100, help="timed policy steps")
    p.add_argument("--threads", type=int, default=None, help="physics threads (default: all cores)")
    p.set_defaults(func=cmd_sim_bench)
    p = sim.add_parser("gait", help="walk with the built-in model-free trot and report distance and falls")
    _add_task_args(p)
    p.set_defaults(num_envs=10)
    p.add_argument("--vx", type=float, default=0.8, help="commanded forward speed, m/s")
    p.add_argument("--seconds", type=float, default=10.0)
    p.set_defaults(func=cmd_sim_gait)

    train = sub.add_parser("train", help="train policies").add_subparsers(dest="train_command", required=True)
    p = train.add_parser("online", help="PPO (from scratch, or Uni-O4 fine-tuning) on the Go1 task or a Gymnasium task")
    _add_task_args(p)
    p.add_argument("--env", default=None, help="a Gymnasium id (e.g. Hopper-v4) instead of the Go1 task")
    p.add_argument("--eval-episodes", type=int, default=5, help="with --env: episodes per evaluation")
    p.add_argument("--eval-envs", type=int, default=16, help="Go1 task: robots per evaluation (with eval_interval > 0)")
    p.add_argument("--eval-seconds", type=float, default=10.0, help="Go1 task: seconds per evaluation")
    p.set_defaults(num_envs=None)
    p.add_argument("--config", default=None, help="preset in configs/train/ or a YAML path (default: ppo_go1, or uni_o4_online with --env)")
    _add_overrides(p, "--train-set", "train_overrides", "ppo.clip=0.1")
    p.add_argument("--iterations", type=int, default=None, help="PPO updates (overrides the config)")
    p.add_argument("--run-dir", default="runs/ppo_go1", help="where checkpoints, TensorBoard and curves go")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest.pt")
    p.add_argument("--init", default=None, help="start from this checkpoint's actor (and critic): BC/offline or online")
    p.set_defaults(func=cmd_train_online)
    p = train.add_parser("offline", help="Uni-O4 offline: critics, BC ensemble, dynamics + OPE, multi-step improvement")
    p.add_argument("--data", required=True, help="HDF5 dataset (D4RL/Minari-style, unio4 collect/data generate/data pack)")
    p.add_argument("--config", default="uni_o4_offline", help="preset in configs/train/ or a YAML path")
    _add_overrides(p, "--train-set", "train_overrides", "improvement.steps=2000")
    p.add_argument("--run-dir", default="runs/offline", help="where checkpoints, TensorBoard and curves go")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/offline_state.pt")
    p.add_argument("--env", default=None, help="Gymnasium id: evaluate the result (and candidates with selection: online)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.set_defaults(func=cmd_train_offline)
    p = train.add_parser("bc", help="behaviour-cloning ensemble on a dataset (Uni-O4's offline BC stage)")
    p.add_argument("--data", required=True, help="HDF5 dataset (unio4 collect, or D4RL-style)")
    p.add_argument("--config", default="bc_go1", help="BC preset in configs/train/ or a YAML path")
    _add_overrides(p, "--train-set", "train_overrides", "steps=5000")
    p.add_argument("-o", "--out", default="runs/bc/bc.pt", help="checkpoint to write")
    p.set_defaults(func=cmd_train_bc)

    p = sub.add_parser("collect", help="log quadruped data from a controller in the simulator (HDF5, D4RL keys)")
    _add_task_args(p)
    p.add_argument("--policy", default="gait", help="'gait' (the built-in trot) or a policy bundle directory (unio4 export)")
    p.add_argument("--explore", action="store_true", help="with a bundle: sample actions from its Gaussian instead of the mean")
    p.add_argument("--steps", type=int, default=500, help="policy steps per env")
    p.add_argument("-o", "--out", default="runs/data/gait.h5", help="HDF5 file to write")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("export", help="checkpoint -> policy bundle (policy.onnx with normalisation baked in + manifest.yaml)")
    p.add_argument("checkpoint", help="a unio4 checkpoint (train online / train bc)")
    p.add_argument("-o", "--out", required=True, help="bundle directory to write")
    p.set_defaults(func=cmd_export)

    robot = sub.add_parser("robot", help="robot descriptions").add_subparsers(dest="robot_command", required=True)
    p = robot.add_parser("export", help="write the generated MJCF and URDF of a robot")
    p.add_argument("--robot", default="go1")
    p.add_argument("--out", default="runs/robot")
    p.set_defaults(func=cmd_robot_export)

    p = sub.add_parser("emulate", help="a simulated Go1 speaking the SDK's low-level UDP protocol (for deploy, sessions, tests)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8007, help="UDP port (the real Go1 listens on 8007)")
    p.add_argument("--lockstep", action="store_true", help="advance physics one tick per LowCmd (deterministic)")
    p.add_argument("--physics", default="mujoco", choices=["mujoco", "pybullet"], help="physics engine of the emulated robot")
    p.add_argument("--duration", type=float, default=None, help="stop after this much emulated time, s")
    p.add_argument("--trace", default=None, help="write the true base trajectory here (.npz) on exit")
    p.add_argument("--seed", type=int, default=0)
    faults = p.add_argument_group("fault injection")
    faults.add_argument("--state-loss", type=float, default=0.0, help="probability of dropping a LowState")
    faults.add_argument("--delay-ticks", type=int, default=0, help="LowStates leave this many 2 ms ticks late")
    faults.add_argument("--bad-crc", type=float, default=0.0, help="probability of a LowState with a corrupt CRC")
    faults.add_argument("--noise", type=float, default=0.0, help="sensor noise std (q rad, gyro rad/s; dq x10)")
    faults.add_argument("--push-every", type=float, default=-1.0, help="push the base every S seconds")
    faults.add_argument("--push-speed", type=float, default=0.5, help="push size, m/s")
    faults.add_argument("--fall-at", type=float, default=-1.0, help="topple the robot at T s")
    faults.add_argument("--stop-combo-at", type=float, default=-1.0, help="the remote's L2+B held from T s")
    faults.add_argument("--freeze-at", type=float, default=-1.0, help="stop sending LowStates at T s (dead link)")
    faults.add_argument("--nan-at", type=float, default=-1.0, help="the IMU reports NaN from T s")
    p.set_defaults(func=cmd_emulate)

    p = sub.add_parser("deploy", help="run a policy bundle on a Go1 (or the emulator) at 50 Hz through the SDK, with safety")
    p.add_argument("bundle", help="policy bundle directory (unio4 export)")
    p.add_argument("--robot", default="192.168.123.10:8007", help="IP[:PORT] of the robot's low-level controller")
    p.add_argument("--local-port", type=int, default=8080, help="local UDP port of the SDK (0: any)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of policy control after the stand-up")
    p.add_argument("--log-dir", default=None, help="write a crash-safe rollout log here")
    p.add_argument("--explore", action="store_true", help="sample actions (seeded) and log log-probs, for on-robot fine-tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--command", dest="command_vel", default=None, metavar="VX,VY,YAW", help="fixed velocity command (default: remote)")
    p.add_argument("--estop", default=None, metavar="URL", help="serial e-stop port or pyserial URL")
    p.add_argument("--config", default="go1", help="runtime preset in configs/deploy/ or a YAML path")
    _add_overrides(p, "--set", "overrides", "safety.max_tilt_rad=0.6")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("eval", help="a bundle on the Go1 task under randomisation: tracking error, falls, power (sim-to-sim gate)")
    p.add_argument("bundle", help="policy bundle directory (unio4 export)")
    p.add_argument("--backend", nargs="+", default=["mujoco", "pybullet"], choices=BACKENDS, help="engines to evaluate in (default: both)")
    p.add_argument("--task", default="go1_flat", help="task preset in configs/task/ or a YAML path")
    _add_overrides(p, "--set", "overrides", "commands.lin_vel_x=[0.5,0.5]")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("replay", help="a robot log: open-loop replay in the simulator (sim vs log), or plots of the log")
    p.add_argument("run", help="rollout log directory (unio4 deploy --log-dir)")
    p.add_argument(
        "--mode",
        default="sim",
        choices=("sim", "robot", "plot"),
        help="sim: the logged targets in a physics backend; robot: the logged targets on a robot at reduced gains; plot",
    )
    p.add_argument("--backend", default="mujoco", choices=BACKENDS, help="physics backend for --mode sim (default: mujoco)")
    p.add_argument("-o", "--out", default=None, help="where PNGs (and the robot replay's log) go (default: RUN/replay)")
    p.add_argument("--render", action="store_true", help="--mode sim: also log | sim pictures (PNG strip + GIF; MuJoCo renderer)")
    p.add_argument("--robot", default=None, help="--mode robot: IP[:PORT] of the robot or the emulator")
    p.add_argument("--local-port", type=int, default=8080, help="--mode robot: local UDP port (0: any free one)")
    p.add_argument("--gain-scale", type=float, default=0.6, help="--mode robot: Kp and Kd multiplier (default 0.6)")
    p.add_argument("--config", default="go1", help="--mode robot: runtime preset in configs/deploy/ (safety limits)")
    _add_overrides(p, "--set", "overrides", "safety.max_tilt_rad=0.6")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("session", help="on-robot fine-tuning: deploy (explore) -> pack -> PPO update -> export -> gate -> flash, resumable")
    p.add_argument("--dir", required=True, help="session directory (state, logs, checkpoints, bundles)")
    p.add_argument("--init", default=None, help="checkpoint to start from (a new session)")
    p.add_argument("--config", default=None, help="session preset in configs/session/ or a YAML path (default: go1, or the stored one)")
    _add_overrides(p, "--set", "overrides", "robot=127.0.0.1:8007")
    task_help = "task preset whose rewards score the logs and whose gate evaluates bundles (default: go1_flat, or the stored one)"
    p.add_argument("--task", default=None, help=task_help)
    _add_overrides(p, "--task-set", "task_overrides", "commands.lin_vel_x=[0.5,0.5]")
    p.add_argument("--no-prompt", action="store_true", help="do not wait for the operator before each rollout")
    p.add_argument("--stop-after", default=None, help="stop after this phase (deploy, pack, update, export, gate, flash)")
    p.set_defaults(func=cmd_session)

    p = sub.add_parser("flash", help="copy a bundle to the robot over SSH, verify sha256 there, switch `current` atomically")
    p.add_argument("bundle", nargs="?", help="policy bundle directory (unio4 export)")
    p.add_argument("--host", required=True, help="user@robot, e.g. unitree@192.168.123.15")
    p.add_argument("--port", type=int, default=22)
    p.add_argument("--identity", default=None, help="SSH private key file (default: ssh's own choice)")
    p.add_argument("--known-hosts", default=None, help="known_hosts file (default: ~/.ssh/known_hosts)")
    p.add_argument("--accept-new-host-key", action="store_true", help="trust an unknown robot's key on first use (off by default)")
    p.add_argument("--remote-dir", default="unio4/bundles", help="bundle store on the robot (relative: under the user's home)")
    p.add_argument("--keep", type=int, default=5, help="versions kept on the robot (the current one always)")
    p.add_argument("--rollback", action="store_true", help="switch current back to the previous version")
    p.set_defaults(func=cmd_flash)

    data = sub.add_parser("data", help="datasets: pack robot logs").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("pack", help="rollout logs (unio4 deploy --log-dir) -> HDF5 dataset, rewards recomputed from raw state")
    p.add_argument("runs", nargs="+", help="run directories, one episode each")
    p.add_argument("-o", "--out", required=True, help="HDF5 file to write")
    p.add_argument("--task", default="go1_flat", help="task preset whose reward config scores the logs")
    _add_overrides(p, "--set", "overrides", "rewards.weights.tracking_lin_vel=2.0")
    p.add_argument("--stance-force", type=float, default=20.0, help="foot force above which a foot carries the leg odometry")
    p.set_defaults(func=cmd_data_pack)
    p = data.add_parser("generate", help="regenerate a D4RL-style MuJoCo dataset (SAC behaviour policies, Gymnasium tasks)")
    p.add_argument("--env", required=True, help="Gymnasium id, e.g. Hopper-v4, HalfCheetah-v4, Walker2d-v4")
    p.add_argument("--level", required=True, help="random | medium | medium-replay | expert | medium-expert")
    p.add_argument("--config", default="d4rl", help="preset in configs/data/ (d4rl, small, tiny) or a YAML path")
    _add_overrides(p, "--set", "overrides", "transitions=20000")
    p.add_argument("--workdir", default=None, help="where the SAC policies are cached (default: runs/generate/ENV-seedN)")
    p.add_argument("-o", "--out", required=True, help="HDF5 file to write")
    p.set_defaults(func=cmd_data_generate)

    bench = sub.add_parser("bench", help="benchmarks that print numbers").add_subparsers(dest="bench_command", required=True)
    p = bench.add_parser("deploy", help="runtime timing (jitter, inference, late ticks) against the real-time emulator")
    p.add_argument("bundle", help="policy bundle directory")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of policy control")
    p.add_argument("--command", dest="command_vel", default="0.3,0,0", metavar="VX,VY,YAW")
    p.add_argument("--realtime-priority", type=int, default=0, help="SCHED_FIFO priority of the control thread (0: off)")
    p.set_defaults(func=cmd_bench_deploy)

    p = bench.add_parser("learning", help="offline-phase throughput per stage; batched vs sequential BC ensemble")
    p.add_argument("--config", default="uni_o4_offline", help="offline preset in configs/train/ or a YAML path")
    _add_overrides(p, "--train-set", "train_overrides", "bc.members=8")
    p.add_argument("--data", default=None, help="a dataset file (default: synthetic, see --shape)")
    p.add_argument("--shape", default="17,6", metavar="OBS,ACT", help="synthetic dataset dimensions (default: Walker2d's)")
    p.add_argument("--transitions", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=50, help="timed gradient steps per stage")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.set_defaults(func=cmd_bench_learning)

    p = sub.add_parser("demo", help="the whole pipeline on a CPU, ending in RUN_DIR/report.html")
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--iterations", type=int, default=60, help="online fine-tuning iterations")
    p.add_argument("--num-envs", type=int, default=128, help="online fine-tuning envs")
    p.add_argument("--quick", action="store_true", help="a cut-down run (about a minute): every stage, tiny sizes")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sim.render import use_offscreen_gl

    use_offscreen_gl()  # before anything imports mujoco: headless rendering (replay --render, demo)
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except (ConfigError, OSError, ValueError, ImportError) as exc:
        print(f"unio4: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unio4: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
