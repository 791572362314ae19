"""The field's reference PPO (rsl_rl, ``pip install unio4[peers]``) on unio4's Go1 task, as a yardstick.

:class:`RslRlGo1Env` is the thin adapter: rsl_rl's ``VecEnv`` over :class:`unio4.sim.task.Go1VelocityTask`
(the policy observation is the ``policy`` group, the privileged critic observation the ``critic``
group; time-outs go to ``extras["time_outs"]`` so rsl_rl bootstraps them). :func:`rsl_rl_config`
maps a unio4 training preset onto rsl_rl's runner configuration, so both learners run the same
networks, rollout length, epochs, minibatches, learning rate, schedule and coefficients; what
differs is the implementation (rsl_rl: one optimiser for actor and critic, an unsquashed mean and a
state-independent scalar std; unio4: separate optimisers, a ``bound * tanh`` mean, a clamped std).

:func:`rsl_rl_time_to_walk` trains with rsl_rl's own ``PPO`` built by its ``OnPolicyRunner`` and
steps it with the runner's rollout loop, so that the same :class:`~unio4.learning.bench.time_to_walk.WalkChecker`
can judge it between updates.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import torch

from unio4.learning.bench.time_to_walk import WalkResult, WalkRun
from unio4.learning.curves import CurveLogger
from unio4.learning.online.runner import OnlineConfig
from unio4.learning.progress import ProgressReporter
from unio4.sim.task import Go1VelocityTask

try:  # an optional dependency: unio4[peers]
    from rsl_rl.env import VecEnv
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("the rsl_rl peer needs rsl-rl-lib: pip install 'unio4[peers]'") from err


class RslRlGo1Env(VecEnv):
    """rsl_rl's vectorised-environment interface over the Go1 task."""

    def __init__(self, task: Go1VelocityTask) -> None:
        self.task = task
        self.num_envs = task.num_envs
        self.num_actions = task.num_actions
        self.device = torch.device(getattr(task, "device", "cpu"))
        self.max_episode_length = int(round(task.cfg.episode_length_s / task.dt))
        self.episode_length_buf = task.episode_length
        self.cfg = asdict(task.cfg)
        obs, info = task.reset(seed=None)
        self._obs = self._group(obs, info["critic_obs"])

    def _group(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> TensorDict:
        return TensorDict({"policy": obs, "critic": critic_obs}, batch_size=[self.num_envs], device=self.device)

    def get_observations(self) -> TensorDict:
        """The observation of the last step (or of the reset)."""
        return self._obs

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """One policy step of every robot; finished robots are reset by the task."""
        obs, reward, terminated, truncated, info = self.task.step(actions)
        self._obs = self._group(obs, info["critic_obs"])
        extras: dict[str, Any] = {"time_outs": truncated.float()}
        if "episode" in info:
            extras["log"] = {f"/{k}": v for k, v in info["episode"].items()}
        return self._obs, reward, (terminated | truncated).float(), extras


def rsl_rl_config(cfg: OnlineConfig) -> dict[str, Any]:
    """rsl_rl's ``OnPolicyRunner`` configuration with the settings of the unio4 preset ``cfg``."""
    p, net = cfg.ppo, cfg.network
    if p.actor_lr != p.critic_lr:
        raise ValueError("rsl_rl uses one learning rate for actor and critic: the preset's actor_lr and critic_lr differ")
    if p.lr_schedule not in ("fixed", "adaptive"):
        raise ValueError(f"rsl_rl has no {p.lr_schedule!r} learning-rate schedule (fixed or adaptive)")
    return {
        "num_steps_per_env": p.num_steps,
        "save_interval": cfg.save_interval,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "actor": {
            "class_name": "MLPModel",
            "hidden_dims": list(net.actor_hidden),
            "activation": net.activation,
            "obs_normalization": net.normalize_observations,
            "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": net.init_std, "std_type": "scalar"},
        },
        "critic": {
            "class_name": "MLPModel",
            "hidden_dims": list(net.critic_hidden),
            "activation": net.critic_activation or net.activation,
            "obs_normalization": net.normalize_observations,
        },
        "algorithm": {
            "class_name": "PPO",
            "num_learning_epochs": p.epochs,
            "num_mini_batches": p.num_minibatches,
            "clip_param": p.clip,
            "gamma": p.gamma,
            "lam": p.gae_lambda,
            "value_loss_coef": p.value_coef,
            "entropy_coef": p.entropy_coef,
            "learning_rate": p.actor_lr,
            "max_grad_norm": p.max_grad_norm,
            "use_clipped_value_loss": True,
            "schedule": "adaptive" if p.lr_schedule == "adaptive" else "fixed",
            "desired_kl": p.desired_kl,
        },
    }


def rsl_rl_time_to_walk(run: WalkRun) -> WalkResult:
    """:func:`unio4.learning.bench.time_to_walk.time_to_walk` with rsl_rl's PPO as the learner (same task, robots, checks)."""
    torch.manual_seed(run.seed)
    cfg = rsl_rl_config(run.train_cfg)
    per_iteration = cfg["num_steps_per_env"] * run.num_envs
    iterations = run.iterations(cfg["num_steps_per_env"])
    task, checker = run.robots_and_checker()
    env = RslRlGo1Env(task)
    runner = OnPolicyRunner(env, cfg, log_dir=None, device=str(env.device))
    alg = runner.alg
    actor = alg.get_policy()

    def policy(obs: torch.Tensor) -> torch.Tensor:
        return actor(TensorDict({"policy": obs}, batch_size=[obs.shape[0]]))

    logger = CurveLogger(run.run_dir, run.logger)
    obs = env.get_observations()
    alg.train_mode()
    with ProgressReporter("rsl_rl PPO", iterations, 0, enabled=run.show_progress, interval_s=0.0) as progress:
        for iteration in range(iterations):
            t0 = time.perf_counter()
            reward_sum = 0.0
            with torch.inference_mode():  # the runner's rollout loop (rsl_rl.runners.OnPolicyRunner.learn)
                for _ in range(cfg["num_steps_per_env"]):
                    actions = alg.act(obs)
                    obs, rewards, dones, extras = env.step(actions)
                    alg.process_env_step(obs, rewards, dones, extras)
                    reward_sum += float(rewards.mean())
                alg.compute_returns(obs)
            collect_s = time.perf_counter() - t0
            losses = alg.update()
            update_s = time.perf_counter() - t0 - collect_s
            samples = (iteration + 1) * per_iteration
            reward_per_step = reward_sum / cfg["num_steps_per_env"]
            scalars = {
                "reward/step": reward_per_step,
                "perf/collect_s": collect_s,
                "perf/update_s": update_s,
                "perf/steps_per_s": per_iteration / (collect_s + update_s),
                "policy/mean_std": float(alg.get_policy().output_std.detach().mean()),
                **{f"loss/{k}": float(v) for k, v in losses.items()},
            }
            logger.log(samples, scalars)
            progress.advance(
                status=f"reward/step {reward_per_step:+.4f}  {scalars['perf/steps_per_s']:.0f} samples/s  "
                f"std {scalars['policy/mean_std']:.2f}"
            )
            alg.eval_mode()
            walked = checker.after_iteration(samples, collect_s + update_s, reward_per_step, policy, last=iteration + 1 == iterations)
            alg.train_mode()
            if walked and run.stop_when_walking:
                break
    logger.plot(("reward/step", "perf/steps_per_s", "policy/mean_std"))
    logger.close()
    runner.save(str(run.run_dir / "model.pt"))
    task.close()
    return checker.close()
