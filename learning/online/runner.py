"""Online training: PPO on a vectorised environment (the loop reads in :func:`train_online`, its steps are :class:`OnlineRunner`'s).

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
from typing import Any, Literal, Protocol

import torch

from unio4.configs.loader import bounded, check_fields, to_dict
from unio4.learning.checkpoint import checkpoint_network, load_checkpoint, save_checkpoint
from unio4.learning.curves import CurveLogger
from unio4.learning.data.dataset import Dataset
from unio4.learning.loggers import LoggerSpec
from unio4.learning.online.distributed import SINGLE, DistContext, broadcast_module
from unio4.learning.online.ppo import PPO, PPOConfig
from unio4.learning.online.reward_scaling import RewardScaler
from unio4.learning.online.value_refit import ValueRefitConfig, refit_network, refit_value
from unio4.learning.policy import GaussianActor, NetworkConfig, ValueCritic, with_std_range
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
    # Environment samples over which the linear decay reaches 0 (the Uni-O4 code: 3 M, whatever the
    # run's length); None: at the run's last iteration.
    lr_decay_samples: int | None = bounded(None, ge=1)
    # What the learner is paid: reward_scale * r, divided by the running std of the discounted return
    # with reward_normalization: running (learning/online/reward_scaling.py). Evaluations score the raw reward.
    reward_scale: float = bounded(1.0, gt=0)
    reward_normalization: Literal["none", "running"] = "none"
    # PPO updates that fit only the critic before the actor moves: a pretrained actor with a fresh
    # critic otherwise takes its first steps on noise.
    critic_warmup_iterations: int = bounded(0, ge=0)
    # The critic PPO starts from: "offline", --init's V; "refit", a fresh V (value_refit: its size and
    # fit) fitted before the first update to the Monte-Carlo returns of the offline data's rewards as
    # the learner is paid them (reward_scale, reward_normalization), as the Uni-O4 code does when it
    # scales rewards (learning/online/value_refit.py). Needs the data: unio4 train online --data.
    critic_init: Literal["offline", "refit"] = "offline"
    value_refit: ValueRefitConfig = field(default_factory=ValueRefitConfig)
    eval_interval: int = bounded(0, ge=0)  # iterations between evaluations (0: never); the first is before any update
    # Where the networks, the rollout buffer and the updates live ("cuda" on a GPU). The Go1 task is
    # created on the same device, so with MuJoCo Warp on CUDA nothing leaves the GPU.
    device: str = "cpu"
    # Exploration floor for a pretrained actor (--init): its log-std range starts at log(min_std)
    # instead of the checkpoint's. The mean, so the deterministic policy, is exactly the offline one;
    # the sampled distribution is wider. None: the exact offline distribution (the default). BC of
    # a near-deterministic controller leaves a tiny std, and PPO's first update from there moves the
    # policy far (docs/benchmarks/go1-uni-o4.md, "Go1: PPO from scratch vs Uni-O4 (offline on gait logs + online)").
    min_std: float | None = bounded(None, gt=0, le=10)
    # Exploration ceiling for a pretrained actor: its log-std range ends at log(max_std), remapped the
    # same way (mean kept, order of stds kept, every std scaled down). PPO improves the sampled
    # policy: a BC actor whose samples score far below its mean action first loses some of its mean's
    # quality (docs/benchmarks/uni-o4-vs-iql.md, "Uni-O4 against IQL on hopper-medium").
    max_std: float | None = bounded(None, gt=0, le=10)
    # torch threads while collecting (None: unchanged). On a CPU the physics engine's own threads
    # step the robots then; torch's idle threads spinning beside them slow the engine, while the
    # policy's small forward passes gain nothing from a second thread. The update runs with torch's
    # usual threads (docs/benchmarks/time-to-walk.md, "Time to walk", throughput of the loop).
    collect_threads: int | None = bounded(None, ge=1)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML
        # across fields: the exploration floor lies below the ceiling
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


def same_shapes(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` fits ``module`` tensor for tensor."""
    own = module.state_dict()
    return own.keys() == state.keys() and all(own[k].shape == state[k].shape for k in own)


def load_init_weights(actor: GaussianActor, critic: ValueCritic, init: dict[str, Any], warn: bool) -> None:
    """Start from ``init``'s actor, and from its critic when that fits this task's critic input."""
    actor.load_state_dict(init["actor"])
    if "critic" in init and same_shapes(critic, init["critic"]):
        critic.load_state_dict(init["critic"])
    elif "critic" in init and warn:
        # e.g. an offline critic trained on robot logs (policy observation) for a task whose critic is privileged
        print("train online: the init checkpoint's critic does not fit this task's critic input; the critic starts fresh")


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
    refit_data: Dataset | None = None,
) -> TrainResult:
    """Run PPO for ``cfg.iterations`` updates of ``cfg.ppo.num_steps`` x ``env.num_envs`` (x ranks) steps.

    Under ``torchrun`` (``ctx``), ``env`` is this rank's batch; rank 0 logs and writes checkpoints.
    ``on_iteration(iteration, scalars, actor)`` runs after every update; returning True ends training there
    (the final checkpoint is written as usual). ``tracker``: where the scalars go besides ``metrics.jsonl``
    (``--logger``; None: TensorBoard). ``refit_data``: the offline dataset that ``critic_init: refit`` fits V to.
    """
    torch.manual_seed(cfg.seed)
    if init is not None and (cfg.min_std is not None or cfg.max_std is not None):
        cfg = replace(cfg, network=with_std_range(cfg.network, cfg.min_std, cfg.max_std))
    if cfg.critic_init == "refit":  # the refit's critic, not the checkpoint's
        if refit_data is None:
            raise ValueError("critic_init: refit fits V to the offline data: give the dataset (unio4 train online --data FILE.h5)")
        cfg = replace(cfg, network=refit_network(cfg.network, cfg.value_refit))
        init = None if init is None else {k: v for k, v in init.items() if k != "critic"}
    runner = OnlineRunner.create(env, cfg, run_dir, init, show_progress, ctx, tracker, extra_state)
    curriculum = runner.load_latest() if resume else None
    if refit_data is not None and cfg.critic_init == "refit" and runner.iteration == 0:  # not when resumed
        runner.refit_critic(refit_data, show_progress)
    runner.share_networks()
    runner.reset(curriculum)
    with ProgressReporter("PPO", cfg.iterations, runner.iteration, enabled=show_progress and ctx.is_main, interval_s=0.0) as progress:
        for iteration in range(runner.iteration, cfg.iterations):
            runner.evaluate_if_due(evaluator, iteration)
            scalars = runner.learn(iteration)
            progress.advance(status=progress_status(scalars))
            stop = bool(on_iteration(iteration, scalars, runner.actor)) if on_iteration is not None else False
            runner.iteration = iteration + 1
            runner.save_if_due(stop)
            if stop:
                break
    return runner.finish(evaluator)


@dataclass
class OnlineRunner:
    """The state of one online run: environment, networks, PPO learner, rank 0's logger and the counters."""

    env: VectorEnv
    cfg: OnlineConfig
    run_dir: Path
    actor: GaussianActor
    critic: ValueCritic
    ppo: PPO
    ctx: DistContext
    logger: CurveLogger | None  # rank 0 only: the other ranks neither log nor write checkpoints
    device: torch.device  # where the networks, the rollout buffer and the updates live
    env_device: torch.device  # where the environment takes its actions
    extra_state: dict[str, Any] | None = None  # recorded in every checkpoint as given
    rewards: RewardScaler | None = None  # the learner's rewards (None: the env's, unchanged)
    iteration: int = 0  # PPO updates done (the next iteration's index)
    global_step: int = 0  # environment steps over every rank
    obs: torch.Tensor = field(init=False)  # the latest observations, on ``device``
    critic_obs: torch.Tensor = field(init=False)

    @classmethod
    def create(
        cls,
        env: VectorEnv,
        cfg: OnlineConfig,
        run_dir: Path,
        init: dict[str, Any] | None,
        show_progress: bool,
        ctx: DistContext,
        tracker: LoggerSpec | None,
        extra_state: dict[str, Any] | None,
    ) -> OnlineRunner:
        """Networks sized for ``env`` (from ``init`` if given) on this rank's device, their learner and rank 0's logger."""
        device = rank_device(cfg.device, ctx)
        env_device = torch.device(getattr(env, "device", "cpu"))
        actor, critic = build_agent(env, cfg)
        if init is not None:
            load_init_weights(actor, critic, init, warn=show_progress and ctx.is_main)
        actor.to(device)
        critic.to(device)
        ppo = PPO(actor, critic, cfg.ppo, seed=cfg.seed, ctx=ctx)
        if cfg.ppo.anchor_coef > 0:
            if init is None:
                raise ValueError("ppo.anchor_coef pulls toward the policy training starts from: give one (--init)")
            ppo.set_anchor(actor)
        logger = CurveLogger(run_dir, tracker) if ctx.is_main else None
        rewards = RewardScaler(env.num_envs, cfg.ppo.gamma, cfg.reward_scale, cfg.reward_normalization, device)
        return cls(env, cfg, run_dir, actor, critic, ppo, ctx, logger, device, env_device, extra_state, rewards if rewards.active else None)

    @property
    def ckpt_dir(self) -> Path:
        """Where ``latest.pt``, ``iter_NNNNNN.pt`` and ``final.pt`` go."""
        return self.run_dir / "checkpoints"

    def load_latest(self) -> dict[str, Any] | None:
        """Continue from ``checkpoints/latest.pt`` if there is one (networks, learner, RNG, counters); returns its curricula."""
        path = self.ckpt_dir / "latest.pt"
        if not path.is_file():
            return None
        state = load_checkpoint(path)
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.ppo.load_state_dict(state["ppo"])
        torch.set_rng_state(state["torch_rng"])
        self.iteration, self.global_step = state["iteration"], state["global_step"]
        if self.rewards is not None and "reward_scaler" in state:
            self.rewards.load_state_dict(state["reward_scaler"])
        curriculum: dict[str, Any] | None = state.get("curriculum")
        return curriculum

    def refit_critic(self, data: Dataset, show_progress: bool) -> None:
        """Fit the fresh critic to ``data`` (:mod:`~unio4.learning.online.value_refit`); a running reward
        scaler continues from the statistics of that pass over the data. Every rank fits; rank 0's is shared.
        """
        cfg = self.cfg
        result = refit_value(
            self.critic, data, cfg.value_refit, cfg.ppo.gamma, cfg.reward_scale, cfg.reward_normalization, cfg.seed,
            show_progress and self.ctx.is_main,
        )  # fmt: skip
        if self.rewards is not None and result.scaler_state is not None:
            self.rewards.load_state_dict({"returns": torch.zeros(self.env.num_envs), **result.scaler_state})
        if self.logger is not None:
            self.logger.log(self.global_step, result.scalars())

    def share_networks(self) -> None:
        """Rank 0's networks on every rank (a no-op in a single process)."""
        broadcast_module(self.actor, self.ctx)
        broadcast_module(self.critic, self.ctx)
        if self.ctx.enabled:  # identical networks everywhere, but each rank explores with its own noise
            torch.manual_seed(self.cfg.seed + 1000 * self.ctx.rank + self.iteration)

    def reset(self, curriculum: dict[str, Any] | None) -> None:
        """Room for a rollout, and the first observations (with the curricula where they stood, on resume)."""
        env = self.env
        self.ppo.init_storage(env.num_envs, env.num_obs, env.num_critic_obs, env.num_actions, self.device)
        obs, info = env.reset(seed=self.cfg.seed + self.iteration)
        if curriculum is not None and hasattr(env, "load_curriculum_state"):  # go on where the curricula stood
            env.load_curriculum_state(curriculum)
            obs, info = env.reset()
        self.obs, self.critic_obs = obs.to(self.device), info["critic_obs"].to(self.device)

    def evaluate_if_due(self, evaluator: Callable[[GaussianActor], dict[str, float]] | None, iteration: int) -> None:
        """Rank 0 logs the evaluator's scores every ``eval_interval`` iterations, the first before any update."""
        if self.logger is not None and evaluator is not None and self.cfg.eval_interval and iteration % self.cfg.eval_interval == 0:
            self.logger.log(self.global_step, {f"eval/{k}": v for k, v in evaluator(self.actor).items()})

    def lr_fraction(self, iteration: int) -> float:
        """The linear decay's share of the initial learning rates before ``iteration``'s update."""
        if self.cfg.lr_decay_samples is None:
            return 1.0 - iteration / self.cfg.iterations
        return max(0.0, 1.0 - self.global_step / self.cfg.lr_decay_samples)

    def learn(self, iteration: int) -> dict[str, float]:
        """One PPO iteration: collect a rollout, update on it; returns (and rank 0 logs) the iteration's scalars."""
        p = self.cfg.ppo
        if self.cfg.linear_lr_decay:
            self.ppo.set_lr_fraction(self.lr_fraction(iteration))
        t0 = time.perf_counter()
        rollout = self.collect()
        collect_time = time.perf_counter() - t0
        reward_per_step = self.ppo.stored_reward_mean()
        stats = self.ppo.update(update_actor=iteration >= self.cfg.critic_warmup_iterations)
        self.global_step += p.num_steps * self.env.num_envs * self.ctx.world_size
        elapsed = time.perf_counter() - t0
        scalars = {
            "reward/step": reward_per_step,
            "perf/steps_per_s": p.num_steps * self.env.num_envs / elapsed,
            "perf/collect_s": collect_time,
            "perf/update_s": elapsed - collect_time,
            **update_scalars(stats),
            "policy/mean_std": float(self.actor(self.obs)[1].detach().exp().mean()),
            **rollout.scalars(p.num_steps),
        }
        if self.logger is not None:
            self.logger.log(self.global_step, scalars)
        return scalars

    def collect(self) -> RolloutStats:
        """Act for ``num_steps`` steps in every env into the learner's buffer, then compute the rollout's returns."""
        dev = self.device
        rollout = RolloutStats()
        with torch.no_grad(), torch_threads(self.cfg.collect_threads):
            for _ in range(self.cfg.ppo.num_steps):
                actions = self.ppo.act(self.obs, self.critic_obs)
                obs, rewards, terminated, truncated, info = self.env.step(actions.to(self.env_device))
                self.obs, self.critic_obs = obs.to(dev), info["critic_obs"].to(dev)
                rewards, terminated, truncated = rewards.to(dev), terminated.to(dev), truncated.to(dev)
                if self.rewards is not None:
                    rewards = self.rewards(rewards, terminated | truncated)
                self.ppo.process_env_step(rewards, terminated, truncated, info)
                rollout.add(info)
            self.ppo.compute_returns(self.critic_obs)
        return rollout

    def save_if_due(self, stop: bool) -> None:
        """Rank 0 writes ``latest.pt`` every ``save_interval`` iterations, at the last one and when stopped, and redraws the curves."""
        n, cfg = self.iteration, self.cfg
        if self.logger is None or not (n % cfg.save_interval == 0 or n == cfg.iterations or stop):
            return
        state = self.checkpoint_state()
        save_checkpoint(self.ckpt_dir / "latest.pt", state)
        if cfg.keep_checkpoints and n % cfg.save_interval == 0:  # a history to go back to
            save_checkpoint(self.ckpt_dir / f"iter_{n:06d}.pt", state)
        self.logger.plot(CURVE_KEYS)

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resumed run needs (networks, learner, RNG, counters, curricula) and what the run was."""
        env = self.env
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "ppo": self.ppo.state_dict(),
            "torch_rng": torch.get_rng_state(),
            **({"reward_scaler": self.rewards.state_dict()} if self.rewards is not None else {}),
            "iteration": self.iteration,
            "global_step": self.global_step,
            "config": to_dict(self.cfg),
            "obs_dim": env.num_obs,
            "critic_obs_dim": env.num_critic_obs,
            "act_dim": env.num_actions,
            "action_bound": self.actor.action_bound,
            **({"curriculum": env.curriculum_state()} if hasattr(env, "curriculum_state") else {}),
            **(self.extra_state or {}),
        }

    def finish(self, evaluator: Callable[[GaussianActor], dict[str, float]] | None) -> TrainResult:
        """Rank 0: a last evaluation (if evaluating), ``final.pt`` and the curves; every rank: where the run went."""
        final = self.ckpt_dir / "final.pt"
        if self.logger is None:
            return TrainResult(run_dir=self.run_dir, history=[], checkpoint=final)
        if evaluator is not None and self.cfg.eval_interval:
            self.logger.log(self.global_step, {f"eval/{k}": v for k, v in evaluator(self.actor).items()})
        save_checkpoint(final, self.checkpoint_state())
        self.logger.plot(CURVE_KEYS)
        self.logger.close()
        return TrainResult(run_dir=self.run_dir, history=self.logger.history(), checkpoint=final)


def progress_status(scalars: dict[str, float]) -> str:
    """The progress line of an iteration: reward, throughput, the value fit and the policy's KL step."""
    return (
        f"reward/step {scalars['reward/step']:+.4f}  {scalars['perf/steps_per_s']:.0f} samples/s  "
        f"value loss {scalars['loss/value']:.3g} (V off by {scalars['value/relative_error']:.0%})  "
        f"kl {scalars['policy/approx_kl']:.3f}"
    )


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
        "anchor_kl": "policy/anchor_kl",
        "actor_lr": "policy/actor_lr",
        "actor_steps": "policy/actor_steps",
        "explained_variance": "value/explained_variance",
        "relative_error": "value/relative_error",
    }
    return {name: stats[key] for key, name in names.items()}
