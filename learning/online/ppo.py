"""PPO: the one on-policy objective of Uni-O4, used from scratch and for online fine-tuning.

Small and explicit, in the manner of rsl_rl. An online learner drives it with four calls::

    actions = ppo.act(obs, critic_obs)                       # sample, remember the transition
    ppo.process_env_step(rewards, terminated, truncated, info) # store it, bootstrap time-outs
    ppo.compute_returns(last_critic_obs)                     # GAE(lambda) over the rollout
    stats = ppo.update()                                     # clipped surrogate, value loss, clear

The rollout buffer spans (steps, envs). Time-outs are bootstrapped (the value of the final
observation of a truncated episode is added to its last reward); true terminals cut the return.
The update is the clipped surrogate with a clipped value loss, entropy bonus, advantage
normalisation and gradient clipping. ``update(buffer)`` also takes a buffer built elsewhere (the
on-robot session builds one from logged rollouts). With ``anchor_coef`` and :meth:`PPO.set_anchor`, the
actor's mean is also pulled toward a fixed policy (the one a fine-tune started from), so behaviour the
rewards do not ask to change stays where it was.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torch import nn

from unio4.configs.loader import bounded, check_fields
from unio4.learning.online.distributed import SINGLE, DistContext, average_gradients, gather_rows, global_moments, mean_over_ranks
from unio4.learning.policy import GaussianActor, ValueCritic


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (``ppo:`` in a training preset)."""

    num_steps: int = bounded(24, ge=1)  # per env per update
    epochs: int = bounded(5, ge=1)
    num_minibatches: int = bounded(4, ge=1)
    minibatch_size: int | None = bounded(None, ge=1)  # if set, overrides num_minibatches (num_steps * num_envs / size)
    gamma: float = bounded(0.99, gt=0, le=1)
    gae_lambda: float = bounded(0.95, ge=0, le=1)
    clip: float = bounded(0.2, gt=0)
    # How far V may move from the rollout's values per update (PPO's clipped value loss); None: no clip.
    value_clip: float | None = bounded(0.2, gt=0)
    # "absolute": value_clip in the returns' own units (rsl_rl); "returns": value_clip times the
    # rollout's return scale (root mean square). An absolute 0.05 on returns in the hundreds (Uni-O4's
    # online setting on unscaled Gymnasium rewards) moves V by ~0.05 per update: the critic is frozen.
    value_clip_scale: Literal["absolute", "returns"] = "absolute"
    entropy_coef: float = bounded(0.01, ge=0)
    value_coef: float = bounded(1.0, gt=0)
    actor_lr: float = bounded(1e-3, gt=0, le=1)
    critic_lr: float = bounded(1e-3, gt=0, le=1)
    adam_eps: float = bounded(1e-5, gt=0)
    max_grad_norm: float = bounded(1.0, gt=0)
    normalize_advantage: bool = True
    # Where advantages are standardised: per minibatch (rsl_rl) or once over the whole rollout before
    # the epochs (the Uni-O4 code, docs/uni-o4-fidelity.md).
    advantage_normalization: Literal["minibatch", "batch"] = "minibatch"
    lr_schedule: Literal["fixed", "linear", "adaptive"] = "adaptive"
    desired_kl: float = bounded(0.01, gt=0)  # adaptive schedule target
    # Stop the actor's steps for the rest of an update once a minibatch's KL to the rollout policy
    # exceeds this (the critic keeps fitting). None: never. A pretrained policy with a narrow
    # Gaussian otherwise takes a very large first update and walks worse after it
    # (docs/benchmarks/go1-uni-o4.md, "Go1: PPO from scratch vs Uni-O4 (offline on gait logs + online)").
    target_kl: float | None = bounded(None, gt=0)
    # Pull toward the start policy (:meth:`PPO.set_anchor`): this times the KL divergence that the move of the actor's
    # mean alone costs, 0.5 * sum(((mean - anchor mean) / anchor std)^2), averaged over the minibatch. 0: none.
    # A fine-tune moves a walker on a robot with nothing to fix too (docs/benchmarks/go1-sessions.md, "The session's own drift").
    anchor_coef: float = bounded(0.0, ge=0)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML


class RolloutBuffer:
    """On-policy storage of ``num_steps`` transitions for ``num_envs`` envs."""

    def __init__(
        self, num_steps: int, num_envs: int, obs_dim: int, critic_obs_dim: int, act_dim: int, device: torch.device | str = "cpu"
    ) -> None:
        t, n, dev = num_steps, num_envs, device
        self.obs = torch.zeros(t, n, obs_dim, device=dev)
        self.critic_obs = torch.zeros(t, n, critic_obs_dim, device=dev)
        self.actions = torch.zeros(t, n, act_dim, device=dev)
        self.log_probs = torch.zeros(t, n, device=dev)
        self.rewards = torch.zeros(t, n, device=dev)
        self.dones = torch.zeros(t, n, device=dev)
        self.values = torch.zeros(t, n, device=dev)
        self.advantages = torch.zeros(t, n, device=dev)
        self.returns = torch.zeros(t, n, device=dev)
        self.step = 0

    def add(
        self,
        obs: torch.Tensor,
        critic_obs: torch.Tensor,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        rewards: torch.Tensor,
        dones: torch.Tensor,
    ) -> None:
        """Store one step of every env."""
        i = self.step
        self.obs[i], self.critic_obs[i], self.actions[i] = obs, critic_obs, actions
        self.log_probs[i], self.values[i], self.rewards[i], self.dones[i] = log_probs, values, rewards, dones.float()
        self.step += 1

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """GAE(lambda); ``dones`` cut the bootstrap (time-outs were already bootstrapped in the reward)."""
        gae = torch.zeros_like(last_values)
        next_values = last_values
        for t in reversed(range(self.step)):
            not_done = 1.0 - self.dones[t]
            delta = self.rewards[t] + gamma * next_values * not_done - self.values[t]
            gae = delta + gamma * lam * not_done * gae
            self.advantages[t] = gae
            next_values = self.values[t]
        self.returns[: self.step] = self.advantages[: self.step] + self.values[: self.step]

    def minibatches(self, num_minibatches: int, generator: torch.Generator, minibatch_size: int | None = None) -> list[torch.Tensor]:
        """Random disjoint index sets over the stored (step, env) pairs."""
        total = self.step * self.obs.shape[1]
        perm = torch.randperm(total, generator=generator)
        return list(perm.split(minibatch_size) if minibatch_size else perm.chunk(num_minibatches))

    def flat(self, name: str) -> torch.Tensor:
        """The stored ``name`` with steps and envs flattened into one axis."""
        x = getattr(self, name)[: self.step]
        return x.reshape(-1, *x.shape[2:])

    def clear(self) -> None:
        """Forget the stored steps (the tensors are reused)."""
        self.step = 0


def surrogate_loss(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's clipped surrogate ``-mean(min(rho A, clip(rho, 1-eps, 1+eps) A))``."""
    ratio = torch.exp(new_log_prob - old_log_prob)
    return -torch.min(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages).mean()


UPDATE_STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "anchor_kl")  # per minibatch, averaged per update


@dataclass(frozen=True)
class FlatRollout:
    """A rollout buffer's stored steps with steps and envs flattened into one axis: what minibatches index."""

    obs: torch.Tensor
    critic_obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    @classmethod
    def of(cls, buffer: RolloutBuffer) -> FlatRollout:
        """The stored steps of ``buffer``, flattened (views, no copies)."""
        return cls(
            obs=buffer.flat("obs"),
            critic_obs=buffer.flat("critic_obs"),
            actions=buffer.flat("actions"),
            log_probs=buffer.flat("log_probs"),
            values=buffer.flat("values"),
            advantages=buffer.flat("advantages"),
            returns=buffer.flat("returns"),
        )


class PPO:
    """Clipped-surrogate actor-critic learner; see the module docstring for the call sequence."""

    def __init__(self, actor: GaussianActor, critic: ValueCritic, cfg: PPOConfig, seed: int = 0, ctx: DistContext = SINGLE) -> None:
        self.actor, self.critic, self.cfg, self.ctx = actor, critic, cfg, ctx
        self.actor_optim = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr, eps=cfg.adam_eps)
        self.critic_optim = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr, eps=cfg.adam_eps)
        self.generator = torch.Generator().manual_seed(seed)
        self.actor_lr = cfg.actor_lr
        self.storage: RolloutBuffer | None = None
        self._transition: tuple[torch.Tensor, ...] = ()
        self.anchor: GaussianActor | None = None

    def set_anchor(self, actor: GaussianActor) -> None:
        """Pull the actor's mean toward a frozen copy of ``actor`` as it is now (its observation normaliser too)."""
        self.anchor = copy.deepcopy(actor).eval().requires_grad_(False)

    # ---- collecting a rollout ----
    def init_storage(self, num_envs: int, obs_dim: int, critic_obs_dim: int, act_dim: int, device: torch.device | str) -> None:
        """Room for one rollout of ``cfg.num_steps`` steps of ``num_envs`` envs."""
        self.storage = RolloutBuffer(self.cfg.num_steps, num_envs, obs_dim, critic_obs_dim, act_dim, device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """Sample actions for ``obs`` and remember (obs, critic obs, actions, log-probs, values) for the step."""
        dist = self.actor.distribution(obs)
        actions = dist.sample()
        self._transition = (obs, critic_obs, actions, dist.log_prob(actions).sum(-1), self.critic(critic_obs))
        return actions

    @torch.no_grad()
    def process_env_step(self, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor, info: dict[str, Any]) -> None:
        """Store the step that followed :meth:`act`; a truncated episode's reward gets ``gamma V(final critic obs)``."""
        assert self.storage is not None, "init_storage first"
        if truncated.any():  # bootstrap through time-outs
            final_values = self.critic(info["final_critic_obs"].to(rewards.device))
            rewards = rewards + self.cfg.gamma * final_values * truncated.float()
        obs, critic_obs, actions, log_probs, values = self._transition
        self.storage.add(obs, critic_obs, actions, log_probs, values, rewards, terminated | truncated)

    @torch.no_grad()
    def compute_returns(self, last_critic_obs: torch.Tensor) -> None:
        """GAE(lambda) advantages and returns of the stored rollout, bootstrapped from ``V(last_critic_obs)``."""
        assert self.storage is not None, "init_storage first"
        self.storage.compute_returns(self.critic(last_critic_obs), self.cfg.gamma, self.cfg.gae_lambda)

    def set_lr_fraction(self, fraction: float) -> None:
        """Linear decay: scale both learning rates to ``fraction`` of their initial value."""
        for group in self.actor_optim.param_groups:
            group["lr"] = self.cfg.actor_lr * fraction
        for group in self.critic_optim.param_groups:
            group["lr"] = self.cfg.critic_lr * fraction

    def stored_reward_mean(self) -> float:
        """Mean reward per step of the stored rollout (time-outs include their bootstrap)."""
        assert self.storage is not None, "init_storage first"
        return float(self.storage.rewards[: self.storage.step].mean())

    # ---- learning from it ----
    def update(self, buffer: RolloutBuffer | None = None, update_actor: bool = True) -> dict[str, float]:
        """Epochs of minibatch updates on ``buffer`` (default: the stored rollout); ``update_actor=False``
        fits only the critic (warm-up).

        After an update on the stored rollout, its observations also refresh the actor's and the
        critic's observation normalisers, and the storage is cleared for the next rollout.
        """
        own = buffer is None
        if buffer is None:
            assert self.storage is not None, "init_storage first"
            buffer = self.storage
        cfg = self.cfg
        rollout = FlatRollout.of(buffer)
        if cfg.normalize_advantage and cfg.advantage_normalization == "batch":
            rollout = replace(rollout, advantages=self._standardized(rollout.advantages))
        value_clip = self._value_clip(rollout.returns)
        fit = self._value_fit(rollout.returns, rollout.values)
        sums = dict.fromkeys(UPDATE_STATS, 0.0)
        count, actor_steps, actor_active = 0, 0, update_actor
        for _ in range(cfg.epochs):
            for idx in buffer.minibatches(cfg.num_minibatches, self.generator, cfg.minibatch_size):
                row, actor_active = self._minibatch_update(rollout, idx, value_clip, actor_active)
                actor_steps += int(actor_active)
                for key, value in row.items():
                    sums[key] += value
                count += 1
        stats = self._update_stats(sums, count, actor_steps, update_actor)
        stats.update(fit)
        if own:
            self._refresh_normalizers(buffer)
            buffer.clear()
        return stats

    def _minibatch_update(
        self, rollout: FlatRollout, idx: torch.Tensor, value_clip: float | None, actor_active: bool
    ) -> tuple[dict[str, float], bool]:
        """One actor step (while active) and one critic step on the minibatch ``idx``.

        Returns the minibatch's statistics and whether the actor is still active (``target_kl``).
        """
        cfg = self.cfg
        old_log_probs = rollout.log_probs[idx]
        dist = self.actor.distribution(rollout.obs[idx])
        new_log_prob = dist.log_prob(rollout.actions[idx]).sum(-1)
        entropy = dist.entropy().sum(-1).mean()
        policy_loss = surrogate_loss(new_log_prob, old_log_probs, self._normalized_advantages(rollout.advantages[idx]), cfg.clip)
        with torch.no_grad():
            log_ratio = new_log_prob - old_log_probs
            kl = ((log_ratio.exp() - 1) - log_ratio).mean().item()
        if cfg.target_kl is not None and actor_active:
            # the ranks' mean: every rank must stop at the same step (gradients are all-reduced)
            if mean_over_ranks({"kl": kl}, self.ctx)["kl"] > cfg.target_kl:
                actor_active = False
        anchor_kl = self._anchor_kl(rollout.obs[idx], dist.mean)
        if actor_active:
            actor_loss = policy_loss - cfg.entropy_coef * entropy + cfg.anchor_coef * anchor_kl
            self._gradient_step(self.actor_optim, self.actor, actor_loss)
        value_loss = self._value_loss(rollout, idx, value_clip)
        self._gradient_step(self.critic_optim, self.critic, cfg.value_coef * value_loss)
        with torch.no_grad():
            clip_fraction = ((log_ratio.exp() - 1).abs() > cfg.clip).float().mean().item()
        row = {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy.item(),
            "approx_kl": kl,
            "clip_fraction": clip_fraction,
            "anchor_kl": anchor_kl.item(),
        }
        return row, actor_active

    def _anchor_kl(self, obs: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """The KL divergence from the anchor that the actor's mean alone costs (0 without an anchor)."""
        if self.anchor is None:
            return mean.new_zeros(())
        with torch.no_grad():
            anchor_mean, anchor_log_std = self.anchor(obs)
        return 0.5 * (((mean - anchor_mean) / anchor_log_std.exp()) ** 2).sum(-1).mean()

    def _normalized_advantages(self, adv: torch.Tensor) -> torch.Tensor:
        """The minibatch's advantages, standardised over every rank's minibatch in ``minibatch`` mode."""
        if not self.cfg.normalize_advantage or self.cfg.advantage_normalization == "batch":
            return adv
        return self._standardized(adv)

    def _standardized(self, adv: torch.Tensor) -> torch.Tensor:
        """``(adv - mean) / (std + 1e-8)`` with the moments over every rank's ``adv``."""
        adv_mean, adv_std = global_moments(adv, self.ctx)
        return (adv - adv_mean) / (adv_std + 1e-8)

    def _value_loss(self, rollout: FlatRollout, idx: torch.Tensor, value_clip: float | None) -> torch.Tensor:
        """Mean squared error of V to the returns; with ``value_clip``, PPO's pessimistic clipped variant."""
        values = self.critic(rollout.critic_obs[idx])
        returns, old_values = rollout.returns[idx], rollout.values[idx]
        value_loss = (values - returns).square()
        if value_clip is not None:
            clipped = old_values + (values - old_values).clamp(-value_clip, value_clip)
            value_loss = torch.max(value_loss, (clipped - returns).square())
        return value_loss.mean()

    def _gradient_step(self, optim: torch.optim.Optimizer, module: nn.Module, loss: torch.Tensor) -> None:
        """Backpropagate ``loss``, average the gradients over ranks, clip their norm and step ``optim``."""
        optim.zero_grad()
        loss.backward()
        average_gradients(module.parameters(), self.ctx)
        nn.utils.clip_grad_norm_(module.parameters(), self.cfg.max_grad_norm)
        optim.step()

    def _update_stats(self, sums: dict[str, float], count: int, actor_steps: int, update_actor: bool) -> dict[str, float]:
        """The update's mean minibatch statistics over ranks; adapts the actor's rate from their KL."""
        stats = mean_over_ranks({**{k: v / count for k, v in sums.items()}, "actor_steps": float(actor_steps)}, self.ctx)
        if self.cfg.lr_schedule == "adaptive" and update_actor:
            self._adapt_lr(stats["approx_kl"])
        stats["actor_lr"] = self.actor_optim.param_groups[0]["lr"]
        return stats

    def _refresh_normalizers(self, buffer: RolloutBuffer) -> None:
        """Fold the rollout's observations (every rank's) into the actor's and the critic's normalisers."""
        self.actor.normalizer.update(gather_rows(buffer.flat("obs"), self.ctx))
        self.critic.normalizer.update(gather_rows(buffer.flat("critic_obs"), self.ctx))

    def _value_fit(self, returns: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
        """How well V, as it was during the rollout, predicted the returns it is now fit to.

        ``explained_variance`` (1 - Var(R - V) / Var(R)) is blind to a constant offset; a critic
        frozen at the wrong scale (returns in the hundreds, V near its offline values) shows in
        ``relative_error``, the RMS of R - V over the RMS of R (about 1 when V ignores R's scale).
        """
        with torch.no_grad():
            err_mean, err_std = (float(v) for v in global_moments(returns - values, self.ctx))
            ret_mean, ret_std = (float(v) for v in global_moments(returns, self.ctx))
        return {
            "explained_variance": 1.0 - err_std**2 / max(ret_std**2, 1e-12),
            "relative_error": ((err_mean**2 + err_std**2) / max(ret_mean**2 + ret_std**2, 1e-12)) ** 0.5,
        }

    def _value_clip(self, returns: torch.Tensor) -> float | None:
        """The value-loss clip range of this update (see ``PPOConfig.value_clip_scale``)."""
        clip = self.cfg.value_clip
        if clip is None or self.cfg.value_clip_scale == "absolute":
            return clip
        mean, std = global_moments(returns, self.ctx)
        return clip * max(float(mean.square() + std.square()) ** 0.5, 1e-8)

    def _adapt_lr(self, kl: float) -> None:
        """KL-adaptive actor learning rate (rsl_rl's rule), applied once per update.

        Adapting after every minibatch lets the rate grow 1.5^k within one update while the KL is
        still small, overshoot, and collapse: the policy then moves in bursts. Once per update,
        from the update's mean KL, is stable.
        """
        if kl > 2.0 * self.cfg.desired_kl:
            self.actor_lr = max(1e-5, self.actor_lr / 1.5)
        elif 0.0 < kl < self.cfg.desired_kl / 2.0:
            self.actor_lr = min(1e-2, self.actor_lr * 1.5)
        for group in self.actor_optim.param_groups:
            group["lr"] = self.actor_lr

    def state_dict(self) -> dict[str, object]:
        """Optimisers, minibatch generator and adaptive rate, for resuming."""
        return {
            "actor_optim": self.actor_optim.state_dict(),
            "critic_optim": self.critic_optim.state_dict(),
            "generator": self.generator.get_state(),
            "actor_lr": self.actor_lr,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`."""
        self.actor_optim.load_state_dict(state["actor_optim"])  # type: ignore[arg-type]
        self.critic_optim.load_state_dict(state["critic_optim"])  # type: ignore[arg-type]
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]
        self.actor_lr = float(state["actor_lr"])  # type: ignore[arg-type]
