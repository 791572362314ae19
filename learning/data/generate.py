"""Regenerate D4RL-style MuJoCo datasets with Gymnasium tasks (``unio4 data generate``).

D4RL cannot be downloaded here, so its recipe is replayed: one SAC run per task and seed;
"medium" is logged from the policy where its deterministic evaluation first reaches
``medium_fraction`` of D4RL's expert return, "medium-replay" is that run's replay buffer up to the
same point (with ``replay_transitions`` set for the task, the buffers of further SAC runs, seeds
``seed + 1, seed + 2, ...``, each up to its own medium point, are pooled until the file holds that
many transitions: D4RL's SAC took longer to reach "medium" than ours, so one run's buffer is
smaller than D4RL's, while each run spans the same random-to-medium range), "expert" comes from
the policy after ``expert_steps``, "medium-expert" concatenates the two and "random" uses uniform
actions. Logged actions are sampled (not the mean), episodes are capped by the task's time limit
(``timeouts``), and rows are episode-contiguous so episodes are recoverable from ``terminals |
timeouts``. Trained policies are cached in ``workdir`` so the levels of one task share one SAC run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from unio4.configs.loader import bounded, check_fields, to_dict
from unio4.learning.checkpoint import load_checkpoint, save_checkpoint
from unio4.learning.curves import CurveLogger
from unio4.learning.data.dataset import Dataset, load_dataset
from unio4.learning.data.sac import SAC, ReplayBuffer, SACConfig, TanhGaussianActor
from unio4.learning.evaluate import episode_returns
from unio4.learning.online.gym_env import make_gym_env
from unio4.learning.progress import ProgressReporter
from unio4.learning.scores import D4RL_REFERENCE, reference_returns, task_family

Level = Literal["random", "medium", "medium-replay", "expert", "medium-expert"]
LEVELS: tuple[str, ...] = ("random", "medium", "medium-replay", "expert", "medium-expert")


@dataclass(frozen=True)
class GenerateConfig:
    """How a D4RL-style dataset is generated: SAC settings, budget per level, transitions, seed."""

    seed: int = bounded(0, ge=0)
    transitions: int = bounded(1_000_000, ge=1)  # per logged level (medium-expert holds twice this)
    medium_fraction: float = bounded(0.33, gt=0, le=1)  # of D4RL's expert return, where "medium" is snapshotted
    max_medium_steps: int = bounded(1_000_000, ge=1)  # SAC steps before giving up on the medium threshold
    expert_steps: int = bounded(1_000_000, ge=1)
    eval_interval: int = bounded(5000, ge=1)
    eval_episodes: int = bounded(5, ge=1)
    collect_envs: int = bounded(10, ge=1)
    # medium-replay size per task (hopper, halfcheetah, walker2d): pool SAC runs' replay buffers up to
    # this many transitions; a task not listed gets one run's buffer, whatever its size
    replay_transitions: dict[str, int] = bounded(ge=1, default_factory=dict)
    max_replay_runs: int = bounded(8, ge=1)  # SAC runs pooled at most before giving up on the size
    sac: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges, for a config built in Python as for one loaded from YAML
        for task in self.replay_transitions:  # dict keys, checked against the D4RL table: no Literal names them
            if task not in D4RL_REFERENCE:
                raise ValueError(f"replay_transitions: unknown task {task!r} (expected one of {sorted(D4RL_REFERENCE)})")


def _spaces(env: gym.Env) -> tuple[int, int, np.ndarray, np.ndarray]:
    obs_space, act_space = env.observation_space, env.action_space
    assert isinstance(obs_space, gym.spaces.Box) and isinstance(act_space, gym.spaces.Box), "Box spaces required"
    return int(np.prod(obs_space.shape)), int(np.prod(act_space.shape)), act_space.low, act_space.high


def evaluate_actor(actor: TanhGaussianActor, env_id: str, episodes: int, seed: int) -> float:
    """Mean return of the deterministic (tanh of the mean) action over ``episodes`` seeded episodes."""
    return float(np.mean(episode_returns(lambda obs: actor(obs, deterministic=True)[0], env_id, episodes, seed)))


def _replay_dataset(buffer: ReplayBuffer, meta: dict[str, object]) -> Dataset:
    """The replay buffer as a dataset; the final, unfinished episode ends in a time-out."""
    n = min(buffer.size, buffer.capacity)
    data = Dataset(
        observations=torch.from_numpy(buffer.obs[:n].copy()),
        actions=torch.from_numpy(buffer.actions[:n].copy()),
        rewards=torch.from_numpy(buffer.rewards[:n].copy()),
        terminals=torch.from_numpy(buffer.terminated[:n].copy()),
        timeouts=torch.from_numpy(buffer.truncated[:n].copy()),
        next_observations=torch.from_numpy(buffer.next_obs[:n].copy()),
        metadata=meta,
    )
    return _first(data, n)


def train_behaviour_policies(env_id: str, cfg: GenerateConfig, workdir: Path, need_expert: bool, show_progress: bool) -> None:
    """One SAC run: snapshot ``medium.pt`` + ``medium-replay.h5`` at the threshold, ``expert.pt`` at the end."""
    ref = reference_returns(env_id)
    if ref is None:
        raise ValueError(f"{env_id}: no D4RL expert return to define 'medium' (known tasks: hopper, halfcheetah, walker2d)")
    target = ref[0] + cfg.medium_fraction * (ref[1] - ref[0])
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = make_gym_env(env_id)
    obs_dim, act_dim, low, high = _spaces(env)
    agent = SAC(obs_dim, act_dim, low, high, cfg.sac)
    buffer = ReplayBuffer(cfg.sac.buffer_size, obs_dim, act_dim)
    logger = CurveLogger(workdir / "sac")
    have_medium = (workdir / "medium.pt").is_file()
    total = cfg.expert_steps if need_expert else cfg.max_medium_steps
    obs, _ = env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    with ProgressReporter(f"SAC on {env_id} (medium target {target:.0f})", total, enabled=show_progress) as progress:
        for step in range(1, total + 1):
            action = env.action_space.sample() if step <= cfg.sac.start_steps else agent.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, float(reward), next_obs, terminated, truncated)
            obs = next_obs
            if terminated or truncated:
                obs, _ = env.reset()
            if step > cfg.sac.start_steps:
                agent.update(buffer.sample(cfg.sac.batch_size, rng))
            progress.advance()
            if step % cfg.eval_interval and step != total:
                continue
            score = evaluate_actor(agent.actor, env_id, cfg.eval_episodes, seed=10_000 + step)
            logger.log(step, {"eval/return": score})
            progress.update(step, f"return {score:.0f}")
            reached = score >= target or step >= cfg.max_medium_steps
            if not have_medium and reached:
                meta = {"env": env_id, "sac_steps": step, "eval_return": score, "target_return": target, "reached_target": score >= target}
                save_checkpoint(workdir / "medium.pt", {"actor": agent.actor.state_dict(), **meta})
                _replay_dataset(buffer, {**meta, "level": "medium-replay", "source": "sac replay buffer"}).save(
                    workdir / "medium-replay.h5"
                )
                have_medium = True
                if not need_expert:
                    break
        if need_expert:
            meta = {"env": env_id, "sac_steps": total, "eval_return": score}
            save_checkpoint(workdir / "expert.pt", {"actor": agent.actor.state_dict(), **meta})
    logger.plot(["eval/return"], name="sac_return.png")
    logger.close()
    env.close()


def collect_transitions(env_id: str, actor: TanhGaussianActor | None, n: int, envs: int, seed: int, show_progress: bool) -> Dataset:
    """``n`` episode-contiguous transitions with sampled actions (``actor=None``: uniform random).

    The actor's action noise comes from torch's generator seeded with ``seed`` (the caller's own
    generator state is restored afterwards), so a file is the same whether its policy was just
    trained in this process or loaded from the cache.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return _collect(env_id, actor, n, envs, seed, show_progress)


def _collect(env_id: str, actor: TanhGaussianActor | None, n: int, envs: int, seed: int, show_progress: bool) -> Dataset:
    vec = [make_gym_env(env_id) for _ in range(envs)]
    obs_np = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(vec)]).astype(np.float32)
    for i, env in enumerate(vec):
        env.action_space.seed(seed + i)
    episodes: list[dict[str, list[np.ndarray]]] = [_empty_episode() for _ in vec]
    done_rows: dict[str, list[np.ndarray]] = _empty_episode()
    count = 0
    with ProgressReporter(f"logging {env_id}", n, enabled=show_progress) as progress:
        while count < n:
            if actor is None:
                actions = np.stack([env.action_space.sample() for env in vec]).astype(np.float32)
            else:
                with torch.no_grad():
                    actions = actor(torch.from_numpy(obs_np))[0].numpy()
            for i, env in enumerate(vec):
                nxt, reward, terminated, truncated, _ = env.step(actions[i])
                ep = episodes[i]
                for key, value in zip(_FIELDS, (obs_np[i], actions[i], reward, nxt, terminated, truncated)):
                    ep[key].append(np.array(value))  # a copy: obs_np rows are overwritten below
                if terminated or truncated:
                    for key in _FIELDS:
                        done_rows[key].extend(ep[key])
                    count += len(ep["rewards"])
                    progress.advance(len(ep["rewards"]))
                    episodes[i] = _empty_episode()
                    nxt, _ = env.reset()
                obs_np[i] = nxt
    for env in vec:
        env.close()
    arrays = {key: np.stack(values[:n]) for key, values in done_rows.items()}
    data = Dataset(
        observations=torch.from_numpy(arrays["observations"].astype(np.float32)),
        actions=torch.from_numpy(arrays["actions"].astype(np.float32)),
        rewards=torch.from_numpy(arrays["rewards"].astype(np.float32)),
        terminals=torch.from_numpy(arrays["terminals"].astype(bool)),
        timeouts=torch.from_numpy(arrays["timeouts"].astype(bool)),
        next_observations=torch.from_numpy(arrays["next_observations"].astype(np.float32)),
    )
    return _first(data, n)  # the last episode is cut by the size limit


_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


def _empty_episode() -> dict[str, list[np.ndarray]]:
    return {key: [] for key in _FIELDS}


def _load_actor(path: Path, env_id: str, cfg: GenerateConfig) -> tuple[TanhGaussianActor, dict[str, object]]:
    state = load_checkpoint(path)
    env = make_gym_env(env_id)
    obs_dim, act_dim, low, high = _spaces(env)
    env.close()
    actor = TanhGaussianActor(obs_dim, act_dim, low, high, cfg.sac.hidden)
    actor.load_state_dict(state["actor"])
    return actor, {k: v for k, v in state.items() if k != "actor"}


def generate(env_id: str, level: str, cfg: GenerateConfig, workdir: Path, show_progress: bool = True) -> Dataset:
    """The dataset for ``level``, training (or reusing from ``workdir``) the SAC behaviour policies."""
    if level not in LEVELS:
        raise ValueError(f"--level: expected one of {list(LEVELS)}, got '{level}'")
    workdir.mkdir(parents=True, exist_ok=True)
    need_medium = level in ("medium", "medium-replay", "medium-expert") and not (workdir / "medium.pt").is_file()
    need_expert = level in ("expert", "medium-expert") and not (workdir / "expert.pt").is_file()
    if need_medium or need_expert:
        train_behaviour_policies(env_id, cfg, workdir, need_expert, show_progress)
    base = {"env": env_id, "level": level, "generator": "unio4 data generate", "config": to_dict(cfg)}
    if level == "medium-replay":
        data = _medium_replay(env_id, cfg, workdir, show_progress)
        data.metadata = {**data.metadata, **base}
        return data
    parts: list[Dataset] = []
    for name in ("medium", "expert") if level == "medium-expert" else (level,):
        actor, meta = (None, {}) if name == "random" else _load_actor(workdir / f"{name}.pt", env_id, cfg)
        part = collect_transitions(env_id, actor, cfg.transitions, cfg.collect_envs, cfg.seed + 1000 * len(parts), show_progress)
        base[f"{name}_policy"] = meta
        parts.append(part)
    data = _concat(parts)
    data.metadata = base
    return data


def _medium_replay(env_id: str, cfg: GenerateConfig, workdir: Path, show_progress: bool) -> Dataset:
    """The first SAC run's replay buffer, pooled with further runs' up to ``replay_transitions``."""
    parts = [load_dataset(workdir / "medium-replay.h5")]
    task = task_family(env_id)
    target = cfg.replay_transitions.get(task, 0)
    have = len(parts[0])
    while have < target:
        if len(parts) >= cfg.max_replay_runs:
            raise ValueError(
                f"replay_transitions.{task}: {target} transitions need more than max_replay_runs="
                f"{cfg.max_replay_runs} SAC runs ({have} from {len(parts)})"
            )
        run = replace(cfg, seed=cfg.seed + len(parts))
        sub = workdir / f"replay-seed{run.seed}"  # each run cached on its own, like the first
        if not (sub / "medium-replay.h5").is_file():
            sub.mkdir(parents=True, exist_ok=True)
            train_behaviour_policies(env_id, run, sub, need_expert=False, show_progress=show_progress)
        parts.append(load_dataset(sub / "medium-replay.h5"))
        have += len(parts[-1])
    runs = [{k: p.metadata.get(k) for k in ("sac_steps", "eval_return", "reached_target")} for p in parts]
    data = _first(_concat(parts), target or have)  # the loop left have >= target
    data.metadata = {**parts[0].metadata, "replay_runs": runs}
    return data


def _first(data: Dataset, n: int) -> Dataset:
    """The first ``n`` transitions; the episode cut there ends in a time-out (as a size limit does)."""
    timeouts = data.timeouts[:n].clone()
    timeouts[-1] |= not bool(data.terminals[n - 1])
    return Dataset(
        data.observations[:n], data.actions[:n], data.rewards[:n], data.terminals[:n], timeouts, data.next_observations[:n],
        metadata=data.metadata,
    )  # fmt: skip


def _concat(parts: list[Dataset]) -> Dataset:
    if len(parts) == 1:
        return parts[0]

    def cat(key: str) -> torch.Tensor:
        return torch.cat([getattr(p, key) for p in parts])

    return Dataset(cat("observations"), cat("actions"), cat("rewards"), cat("terminals"), cat("timeouts"), cat("next_observations"))
