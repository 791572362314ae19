"""One rollout on a robot: a typed request, run in this process or in a child process of its own.

``unio4 deploy`` turns its flags into a :class:`RolloutRequest` and calls :func:`run_rollout`. The on-robot
session (:mod:`unio4.learning.robot.session`) runs each of its rollouts with :func:`run_rollout_process`, which
starts ``python -m unio4.deploy.rollout`` on the same request: the real-time loop then runs away from the
learner's threads and memory, and a crash or a hang there is an exit code, not the end of the session.

The request crosses to the child as ``--FIELD VALUE`` pairs written and read from the dataclass's own
fields (text as it is, other values as JSON, validated by the config loader), so no flag is defined twice
and the child's command line still reads as the rollout it runs (``--out RUN`` included). Exit codes, the
same in and out of process: 0 done, 3 a safety stop (its log is still data), 2 a one-line error
(``unio4: error: ...`` on stderr), 130 interrupted, 1 a bug.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unio4.configs.command_line import run_reporting_errors
from unio4.configs.loader import bounded, from_dict, load, resolve_config_path, to_dict
from unio4.deploy import runtime
from unio4.deploy.bundle import load_bundle
from unio4.deploy.robot_io import resolve_host
from unio4.deploy.tracker import resolve_tracker

if TYPE_CHECKING:  # the streamer (and rerun behind it) is imported only when a request streams
    from unio4.deploy.rerun_stream import RerunStreamer

SDK_PORT = 8007  # the Go1's low-level controller listens here
SDK_LOCAL_PORT = 8080  # the SDK's own default local UDP port
EXIT_SAFETY_STOP = 3


@dataclass(frozen=True)
class RolloutRequest:
    """One rollout of ``bundle`` on the robot at ``robot``: what ``unio4 deploy`` runs, from its flags or a session."""

    bundle: str  # policy bundle directory
    robot: str = f"192.168.123.10:{SDK_PORT}"  # IP[:PORT] of the robot's low-level controller
    duration: float = 10.0  # seconds of policy control after the stand-up
    out: str | None = None  # the rollout log directory; None: a new runs/deploy/YYYYmmdd-HHMMSS
    explore: bool = False  # sample actions (seeded) and log log-probs, for on-robot fine-tuning
    seed: int = 0
    local_port: int = bounded(SDK_LOCAL_PORT, ge=0, le=65535)  # the SDK's local UDP port (0: any free one)
    command: tuple[float, float, float] | None = None  # fixed (vx, vy, yaw rate); None: the remote's sticks
    config: str = "go1"  # runtime preset in configs/deploy/ or a YAML path
    runtime_overrides: tuple[str, ...] = ()  # KEY=VALUE overrides of the runtime config
    estop: str | None = None  # serial e-stop port or pyserial URL
    rerun: str | None = None  # stream the run to a Rerun viewer at HOST[:PORT]
    rerun_save: str | None = None  # write the Rerun stream to this .rrd file


def run_rollout(request: RolloutRequest) -> int:
    """Run ``request`` in this process: check everything that can be checked before a log directory exists,
    run the bundle, print what it did. Returns 0, or :data:`EXIT_SAFETY_STOP` after a safety stop.
    """
    streaming = request.rerun is not None or request.rerun_save is not None
    if streaming:
        from unio4.deploy.rerun_stream import require_rerun  # rerun-sdk is optional: only a streaming run loads it

        require_rerun()  # a missing rerun-sdk fails here, in one line, before any work
    cfg = load(runtime.RuntimeConfig, resolve_config_path(request.config, "deploy"), runtime_overrides(request))
    host, port = robot_address(request.robot)
    resolve_host(host, port)  # a bad address fails here, before a log directory is made
    if cfg.tracker.address is not None:
        resolve_tracker(cfg.tracker.address)
    bundle = load_bundle(request.bundle)
    mode = "explore" if request.explore else "deterministic"
    print(f"deploy: {request.bundle} -> udp://{host}:{port}, {mode}, {request.duration:.1f} s", flush=True)
    log_dir = Path(request.out) if request.out is not None else new_log_dir(Path("runs") / "deploy")
    print(f"deploy: rollout log {log_dir}", flush=True)
    stream: RerunStreamer | None = None
    try:
        if streaming:
            from unio4.deploy.rerun_stream import open_stream
            from unio4.robots.description import load_robot

            stream = open_stream(load_robot(bundle.spec.robot), request.rerun, request.rerun_save)
        result = runtime.run_bundle(
            bundle, host, port, cfg, request.duration, request.local_port, log_dir, request.explore, request.seed, stream
        )
    except BaseException:
        if request.out is None:
            drop_if_empty(log_dir)  # nothing ran (no robot, no SDK): no empty log left behind
        raise
    print_result(result, cfg, log_dir, stream, request)
    if result.safety_stop:
        print(f"deploy: SAFETY STOP: {result.reason}", file=sys.stderr)
        return EXIT_SAFETY_STOP
    return 0


def runtime_overrides(request: RolloutRequest) -> list[str]:
    """The runtime config's overrides: the request's own, then its fixed command and e-stop."""
    sets = list(request.runtime_overrides)
    if request.command is not None:
        sets.append(f"command=[{','.join(repr(v) for v in request.command)}]")
    if request.estop is not None:
        sets.append(f"estop.url={request.estop}")
    return sets


def robot_address(text: str, default_port: int = SDK_PORT) -> tuple[str, int]:
    """``IP[:PORT]`` as (host, port), or a one-line error naming ``--robot``."""
    host, _, port = text.partition(":")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ValueError(f"--robot {text!r}: expected IP[:PORT]") from None
    if not host or not 0 < number < 65536:
        raise ValueError(f"--robot {text!r}: expected IP[:PORT], e.g. 192.168.123.10:8007 (PORT 1-65535)")
    return host, number


def print_result(
    result: runtime.RunResult, cfg: runtime.RuntimeConfig, log_dir: Path, stream: RerunStreamer | None, request: RolloutRequest
) -> None:
    """How the run ended, its timing, the Rerun stream's counts and where the log is."""
    t = result.timing
    print(f"deploy: {result.policy_steps} policy steps; ended by {result.reason}; damping held {cfg.damping_hold_s:.1f} s")
    print(f"  inference     p50 {t['inference']['p50_ms']:.3f} ms  p99 {t['inference']['p99_ms']:.3f} ms")
    print(f"  policy period error p99 {t['policy_period_error']['p99_ms']:.3f} ms, missed deadlines {t['policy_missed_deadlines']}")
    print(f"  I/O wake error p99 {t['io_wake_error']['p99_ms']:.3f} ms, late ticks {t['io_late_ticks']}, missed {t['io_missed_ticks']}")
    if stream is not None:
        s = stream.stats
        where = " and ".join(x for x in (request.rerun and f"viewer {request.rerun}", request.rerun_save) if x)
        print(f"  rerun: {s.sent} of {s.steps} steps sent to {where}, {s.dropped} dropped" + (f"; stopped: {s.error}" if s.error else ""))
    print(f"deploy: log in {log_dir}")


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


# ---- the same rollout in a child process --------------------------------------------------------


def run_rollout_process(request: RolloutRequest, timeout_s: float) -> tuple[int, str]:
    """:func:`run_rollout` of ``request`` in a child process, stopped past ``timeout_s`` (:func:`run_bounded`).

    Returns the child's exit code and stderr (its last line: the one-line error of a failed rollout).
    """
    return run_bounded([sys.executable, "-m", "unio4.deploy.rollout", *request_argv(request)], timeout_s)


def run_bounded(cmd: list[str], timeout_s: float) -> tuple[int, str]:
    """Run a deploy child; past ``timeout_s`` it gets SIGTERM (its runtime damps and exits), SIGKILL 10 s later.

    Returns the exit code and stderr. A rollout stopped this way counts as a safety stop (exit 3): its log is data.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
        return proc.returncode, stderr
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=10.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        return EXIT_SAFETY_STOP, f"{stderr}\nrollout stopped: still running {timeout_s:.0f} s after it started"


def request_argv(request: RolloutRequest) -> list[str]:
    """``--field-name VALUE`` for every field not at its default: text as it is, anything else as JSON."""
    argv: list[str] = []
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        text = value if isinstance(value, str) else json.dumps(to_dict(value), separators=(",", ":"))
        argv += [f"--{f.name.replace('_', '-')}", text]
    return argv


def parse_request(argv: Sequence[str]) -> RolloutRequest:
    """The request :func:`request_argv` wrote, validated as a config is (types, ranges: one-line errors)."""
    hints = typing.get_type_hints(RolloutRequest)
    names = {f"--{name.replace('_', '-')}": name for name in hints}
    if len(argv) % 2:
        raise ValueError(f"rollout request {list(argv)}: expected --FIELD VALUE pairs")
    data: dict[str, Any] = {}
    for flag, text in zip(argv[::2], argv[1::2]):
        if flag not in names:
            raise ValueError(f"rollout request: unknown field {flag!r} (expected one of {', '.join(names)})")
        name = names[flag]
        try:
            data[name] = text if _is_text(hints[name]) else json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"rollout request: {flag} {text!r}: not a JSON value ({exc})") from None
    return from_dict(RolloutRequest, data, where="rollout request")


def _is_text(tp: Any) -> bool:
    """Whether a field's annotation is ``str`` or ``str | None`` (its value crosses as it is, not as JSON)."""
    return tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType) and str in typing.get_args(tp))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m unio4.deploy.rollout --FIELD VALUE ...``: one rollout, its failures reported as ``unio4 deploy`` reports them."""
    return run_reporting_errors(lambda: run_rollout(parse_request(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
