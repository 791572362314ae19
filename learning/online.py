"""Online training: PPO on a vectorised environment (cleanrl-style, one linear loop).

Used for PPO from scratch and, initialised from an offline checkpoint, for Uni-O4's online phase.
Writes scalars (TensorBoard, W&B or none: :mod:`unio4.learning.loggers`), ``metrics.jsonl``, PNG curves and full-state checkpoints
(``checkpoints/latest.pt`` every ``save_interval`` iterations, ``final.pt`` at the end);
``resume=True`` continues from ``latest.pt`` (networks, optimisers, normalisers, RNG, counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from unio4.configs.loader import bounded, to_dict
from unio4.learning.checkpoint import checkpoint_network, load_checkpoint, save_checkpoint
from unio4.learning.curves import CurveLogger
from unio4.learning.distributed import SINGLE, DistContext, broadcast_module
from unio4.learning.loggers import LoggerSpec
from unio4.learning.policy import GaussianActor, NetworkConfig, ValueCritic, with_std_range
from unio4.learning.ppo import PPO, PPOConfig
from unio4.learning.progress import ProgressReporter


class VectorEnv(Protocol):
    """What the online learner needs from an environment (see :class:`unio4.sim.task.Go1VelocityTask`)."""

    num_envs: int
    num_obs: int
    num_critic_obs: int
    num_actions: int
    single_action_space: Any

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Reset every env: (obs, info with ``critic_obs``)."""

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """(obs, reward, terminated, truncated, info); finished envs reset (see the Go1 task)."""


@dataclass(frozen=True)
class OnlineConfig:
    """Online PPO settings: iterations, checkpoints, evaluation, device, networks, PPO."""

    seed: int = bounded(0, ge=0)
    iterations: int = bounded(300, ge=1)
    save_interval: int = bounded(50, ge=1)
    keep_checkpoints: bool = True  # also keep checkpoints/iter_NNNNNN.pt at every save_interval (latest.pt always)
    linear_lr_decay: bool = False
    # PPO updates that fit only the critic before the actor moves: a pretrained actor with a fresh
    # critic otherwise takes its first steps on noise.
    critic_warmup_iterations: int = bounded(0, ge=0)
    eval_interval: int = bounded(0, ge=0)  # iterations between evaluations (0: never); the first is before any update
    # Where the networks, the rollout buffer and the updates live ("cuda" on a GPU). The Go1 task is
    # created on the same device, so with MuJoCo Warp on CUDA nothing leaves the GPU.
    device: str = "cpu"
    # Exploration floor for a pretrained actor (--init): its log-std range starts at log(min_std)
    # instead of the checkpoint's. The mean, so the deterministic policy, is exactly the offline one;
    # the sampled distribution is wider. None: the exact offline distribution (the default). BC of
    # a near-deterministic controller leaves std ~0.03, and PPO's first update from there moved
    # the policy by KL ~30.
    min_std: float | None = bounded(None, gt=0, le=10)
    # Exploration ceiling for a pretrained actor: its log-std range ends at log(max_std), remapped the
    # same way (mean kept, order of stds kept, every std scaled down). PPO improves the sampled
    # policy: a BC actor whose samples score far below its mean action (hopper-medium: returns
    # 1500-1700 sampled against 1760-3070 for the mean) first loses some of its mean's quality; with
    # max_std 0.2 the evaluation after 51 k steps was higher on 3 of 3 seeds (docs/benchmarks.md).
    max_std: float | None = bounded(None, gt=0, le=10)
    # torch threads while collecting (None: unchanged). On a CPU the physics engine's own threads
    # step the robots then; torch's idle threads spinning beside them cost the engine ~6 % at 256
    # robots on 2 cores, while the policy's small forward passes gain nothing from a second thread.
    # The update runs with torch's usual threads (docs/benchmarks.md, throughput of the loop).
    collect_threads: int | None = bounded(None, ge=1)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def __post_init__(self) -> None:
        if self.min_std is not None and self.max_std is not None and not self.min_std < self.max_std:
            raise ValueError(f"min_std ({self.min_std}) must lie below max_std ({self.max_std})")


@dataclass
class TrainResult:
    """Where a run went, its logged rows and the final checkpoint."""

    run_dir: Path
    history: list[dict[str, float]]
    checkpoint: Path


CURVE_KEYS = (
    "eval/return",
    "eval/d4rl_score",
    "eval/reward/step",
    "reward/step",
    "reward/tracking_lin_vel",
    "reward/tracking_ang_vel",
    "episode/return",
    "episode/length",
    "episode/command_fraction",  # the command curriculum (from scratch)
    "episode/terrain_level",  # the terrain curriculum (rough terrain)
    "loss/value",
    "value/relative_error",  # about 1: V does not follow the returns' scale (a frozen critic)
)


def load_init(path: str | Path, cfg: OnlineConfig) -> tuple[dict[str, Any], OnlineConfig]:
    """Weights to start from (an offline or online checkpoint, or a bundle's) and ``cfg`` with its network config.

    The network architecture comes from the checkpoint, so the learner starts from exactly the
    saved policy (same action distribution before the first update). A policy bundle directory
    starts from the weights-only ``checkpoint.pt`` it carries.
    """
    from unio4.learning.export import init_checkpoint

    path = init_checkpoint(path)
    state = load_checkpoint(path)
    network = checkpoint_network(state, str(path))
    if network is not None:
        cfg = replace(cfg, network=network)
    init = {"actor": state["actor"]} | ({"critic": state["critic"]} if "critic" in state else {})
    return init, cfg


def rank_device(device: str, ctx: DistContext) -> torch.device:
    """``device`` for this rank: plain "cuda" means this rank's own GPU under torchrun."""
    return torch.device(f"cuda:{ctx.local_rank}") if device == "cuda" else torch.device(device)


def build_agent(env: VectorEnv, cfg: OnlineConfig) -> tuple[GaussianActor, ValueCritic]:
    """Fresh actor and critic sized for ``env``."""
    bound = float(env.single_action_space.high[0])
    actor = GaussianActor(env.num_obs, env.num_actions, bound, cfg.network)
    critic = ValueCritic(env.num_critic_obs, cfg.network)
    return actor, critic


def _same_shapes(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` fits ``module`` tensor for tensor."""
    own = module.state_dict()
    return own.keys() == state.keys() and all(own[k].shape == state[k].shape for k in own)


def train_online(
    env: VectorEnv,
    cfg: OnlineConfig,
    run_dir: Path,
    resume: bool = False,
    init: dict[str, Any] | None = None,
    extra_state: dict[str, Any] | None = None,
    on_iteration: Callable[[int, dict[str, float], GaussianActor], bool | None] | None = None,
    show_progress: bool = True,
    evaluator: Callable[[GaussianActor], dict[str, float]] | None = None,
    ctx: DistContext = SINGLE,
    tracker: LoggerSpec | None = None,
) -> TrainResult:
    """Run PPO for ``cfg.iterations`` updates of ``cfg.ppo.num_steps`` x ``env.num_envs`` (x ranks) steps.

    Under ``torchrun`` (``ctx``), ``env`` is this rank's batch; rank 0 logs and writes checkpoints.
    ``on_iteration(iteration, scalars, actor)`` runs after every update; returning True ends training there
    (the final checkpoint is written as usual). ``tracker``: where the scalars go besides ``metrics.jsonl``
    (``--logger``; None: TensorBoard).
    """
    torch.manual_seed(cfg.seed)
    if init is not None and (cfg.min_std is not None or cfg.max_std is not None):
        cfg = replace(cfg, network=with_std_range(cfg.network, cfg.min_std, cfg.max_std))
    dev = rank_device(cfg.device, ctx)
    env_device = torch.device(getattr(env, "device", "cpu"))
    actor, critic = build_agent(env, cfg)
    if init is not None:
        actor.load_state_dict(init["actor"])
        if "critic" in init and _same_shapes(critic, init["critic"]):
            critic.load_state_dict(init["critic"])
        elif "critic" in init and show_progress and ctx.is_main:
            # e.g. an offline critic trained on robot logs (policy observation) for a task whose critic is privileged
            print("train online: the init checkpoint's critic does not fit this task's critic input; the critic starts fresh")
    actor.to(dev)
    critic.to(dev)
    ppo = PPO(actor, critic, cfg.ppo, seed=cfg.seed, ctx=ctx)
    main = ctx.is_main
    logger = CurveLogger(run_dir, tracker) if main else None
    ckpt_dir = run_dir / "checkpoints"
    start_iteration, global_step = 0, 0
    curriculum: dict[str, Any] | None = None
    if resume and (ckpt_dir / "latest.pt").is_file():
        state = load_checkpoint(ckpt_dir / "latest.pt")
        curriculum = state.get("curriculum")
        actor.load_state_dict(state["actor"])
        critic.load_state_dict(state["critic"])
        ppo.load_state_dict(state["ppo"])
        torch.set_rng_state(state["torch_rng"])
        start_iteration, global_step = state["iteration"], state["global_step"]
    broadcast_module(actor, ctx)
    broadcast_module(critic, ctx)
    if ctx.enabled:  # identical networks everywhere, but each rank explores with its own noise
        torch.manual_seed(cfg.seed + 1000 * ctx.rank + start_iteration)

    def checkpoint_state(iteration: int) -> dict[str, Any]:
        return {
            "actor": actor.state_dict(),
            "critic": critic.state_dict(),
            "ppo": ppo.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "iteration": iteration,
            "global_step": global_step,
            "config": to_dict(cfg),
            "obs_dim": env.num_obs,
            "critic_obs_dim": env.num_critic_obs,
            "act_dim": env.num_actions,
            "action_bound": actor.action_bound,
            **({"curriculum": env.curriculum_state()} if hasattr(env, "curriculum_state") else {}),
            **(extra_state or {}),
        }

    p = cfg.ppo
    last_iteration = start_iteration
    ppo.init_storage(env.num_envs, env.num_obs, env.num_critic_obs, env.num_actions, dev)
    obs, info = env.reset(seed=cfg.seed + start_iteration)
    if curriculum is not None and hasattr(env, "load_curriculum_state"):  # go on where the curricula stood
        env.load_curriculum_state(curriculum)
        obs, info = env.reset()
    obs, critic_obs = obs.to(dev), info["critic_obs"].to(dev)
    with ProgressReporter("PPO", cfg.iterations, start_iteration, enabled=show_progress and main, interval_s=0.0) as progress:
        for iteration in range(start_iteration, cfg.iterations):
            if logger is not None and evaluator is not None and cfg.eval_interval and iteration % cfg.eval_interval == 0:
                logger.log(global_step, {f"eval/{k}": v for k, v in evaluator(actor).items()})
            if cfg.linear_lr_decay:
                ppo.set_lr_fraction(1.0 - iteration / cfg.iterations)
            t0 = time.perf_counter()
            rollout = RolloutStats()
            with torch.no_grad(), torch_threads(cfg.collect_threads):
                for _ in range(p.num_steps):
                    actions = ppo.act(obs, critic_obs)
                    obs, rewards, terminated, truncated, info = env.step(actions.to(env_device))
                    obs, critic_obs = obs.to(dev), info["critic_obs"].to(dev)
                    ppo.process_env_step(rewards.to(dev), terminated.to(dev), truncated.to(dev), info)
                    rollout.add(info)
                ppo.compute_returns(critic_obs)
            collect_time = time.perf_counter() - t0
            reward_per_step = ppo.stored_reward_mean()
            stats = ppo.update(update_actor=iteration >= cfg.critic_warmup_iterations)
            global_step += p.num_steps * env.num_envs * ctx.world_size
            elapsed = time.perf_counter() - t0
            scalars = {
                "reward/step": reward_per_step,
                "perf/steps_per_s": p.num_steps * env.num_envs / elapsed,
                "perf/collect_s": collect_time,
                "perf/update_s": elapsed - collect_time,
                **update_scalars(stats),
                "policy/mean_std": float(actor(obs)[1].detach().exp().mean()),
                **rollout.scalars(p.num_steps),
            }
            if logger is not None:
                logger.log(global_step, scalars)
            progress.advance(
                status=f"reward/step {scalars['reward/step']:+.4f}  {scalars['perf/steps_per_s']:.0f} samples/s  "
                f"value loss {scalars['loss/value']:.3g} (V off by {scalars['value/relative_error']:.0%})  "
                f"kl {scalars['policy/approx_kl']:.3f}"
            )
            stop = bool(on_iteration(iteration, scalars, actor)) if on_iteration is not None else False
            last_iteration = iteration + 1
            if logger is not None and (last_iteration % cfg.save_interval == 0 or last_iteration == cfg.iterations or stop):
                state = checkpoint_state(last_iteration)
                save_checkpoint(ckpt_dir / "latest.pt", state)
                if cfg.keep_checkpoints and last_iteration % cfg.save_interval == 0:  # a history to go back to
                    save_checkpoint(ckpt_dir / f"iter_{last_iteration:06d}.pt", state)
                logger.plot(CURVE_KEYS)
            if stop:
                break
    final = ckpt_dir / "final.pt"
    if logger is None:
        return TrainResult(run_dir=run_dir, history=[], checkpoint=final)
    if evaluator is not None and cfg.eval_interval:
        logger.log(global_step, {f"eval/{k}": v for k, v in evaluator(actor).items()})
    save_checkpoint(final, checkpoint_state(last_iteration))
    logger.plot(CURVE_KEYS)
    logger.close()
    return TrainResult(run_dir=run_dir, history=logger.history(), checkpoint=final)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Within the block, torch uses ``n`` intra-op threads (None: unchanged)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RolloutStats:
    """Reward terms and finished episodes of one rollout, for logging."""

    def __init__(self) -> None:
        self.term_sums: dict[str, float] = {}
        self.episodes: list[dict[str, float]] = []

    def add(self, info: dict[str, Any]) -> None:
        """Add one step's reward terms and finished episodes."""
        for name, value in info.get("reward_terms", {}).items():
            self.term_sums[name] = self.term_sums.get(name, 0.0) + float(value.mean())
        if "episode" in info:
            self.episodes.append(info["episode"])

    def scalars(self, num_steps: int) -> dict[str, float]:
        """Mean weighted reward term per step (``reward/<term>``) and episode statistics (``episode/<key>``)."""
        out = {f"reward/{k}": v / num_steps for k, v in self.term_sums.items()}
        if self.episodes:
            for key in self.episodes[0]:
                out[f"episode/{key}"] = sum(e[key] for e in self.episodes) / len(self.episodes)
        return out


def update_scalars(stats: dict[str, float]) -> dict[str, float]:
    """PPO's update statistics under their logged names."""
    names = {
        "policy_loss": "loss/policy",
        "value_loss": "loss/value",
        "entropy": "policy/entropy",
        "approx_kl": "policy/approx_kl",
        "clip_fraction": "policy/clip_fraction",
        "actor_lr": "policy/actor_lr",
        "actor_steps": "policy/actor_steps",
        "explained_variance": "value/explained_variance",
        "relative_error": "value/relative_error",
    }
    return {name: stats[key] for key, name in names.items()}
