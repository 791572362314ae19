"""Can the offline critics be trusted? Four numbers a user should see before trusting the improvement step.

- **Action sensitivity** (:func:`action_sensitivity`): at fixed states, how much Q moves when the
  action changes, against how much it moves across states. The improvement step follows
  ``A(s, a) = Q(s, a) - V(s)``; a Q that is flat in the action (ratio near 0) gives advantages
  that are noise, and AM-Q's ranking of policies with them.
- **OPE rank correlation** (:func:`rank_correlation`): with a simulator at hand, Spearman's rho
  between the off-policy estimates of the candidate policies (BC members, improved members) and
  their true returns. Near 1: OPE orders policies as reality does; near 0 or negative: it does not.
- **Action coverage** (:func:`action_coverage`): how much of the logged actions' variance the state
  does not explain (the BC mean's residual). Near 0, the data holds about one action per state (a
  deterministic controller such as the built-in trot); Q then has never seen what another
  action does there, and its action gradient, which the improvement step follows, is extrapolation.
- **Drift from the data** (:class:`Drift`): the dynamics elites' disagreement along each policy's
  OPE rollouts, improved against BC. It needs no simulator: where the improved policies' rollouts
  show much more of it than the BC members', both the model and Q are extrapolating, and a rising
  AM-Q there may be their error rather than a better policy (as on Go1 trot logs:
  docs/benchmarks/go1-uni-o4.md, "Go1 trot logs: does Uni-O4's improvement step beat its BC members?").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# Below this ratio of within-state to across-state spread, Q is reported flat in the action. The ratio
# tells a Q that ignores the action from one that does not; it does not say whether Q ranks actions
# right (OPE's rank correlation and the drift line do), so the flag is kept for near-zero ratios:
# critics at ratios between 0.02 and 0.05 have driven real improvements over BC
# (docs/benchmarks/uni-o4-vs-iql.md, "Uni-O4 against IQL on hopper-medium").
FLAT_RATIO = 0.02
# Below this fraction of the action variance left unexplained by the state, the data is reported as about
# one action per state: the noise-free built-in trot's logs fall below it; logs with exploration noise, of a
# sampling policy or of many policies lie above (docs/benchmarks/go1-uni-o4.md, "Go1 trot logs with exploration").
NARROW_COVERAGE = 0.05
# Above this ratio of the improved policies' model disagreement to the BC members', they are reported
# as scored by extrapolation.
DRIFT_RATIO = 1.2


@dataclass
class Drift:
    """Mean elite disagreement along the OPE rollouts of each group of policies (BC, accepted, learners)."""

    bc: list[float]
    behaviour: list[float]
    learner: list[float]

    @property
    def ratio(self) -> float:
        """Accepted behaviour policies' mean disagreement over the BC members'."""
        return (sum(self.behaviour) / len(self.behaviour)) / max(sum(self.bc) / len(self.bc), 1e-12)

    @property
    def extrapolating(self) -> bool:
        """Whether the accepted policies went far enough from the data for OPE to be doubtful."""
        return self.ratio > DRIFT_RATIO

    def line(self) -> str:
        """One line for a terminal or a log."""
        mean = {k: sum(v) / len(v) for k, v in (("bc", self.bc), ("behaviour", self.behaviour), ("learner", self.learner))}
        verdict = "within the data"
        if self.extrapolating:
            verdict = "the improved policies left the data: AM-Q gains there may be model and Q error"
        return (
            f"model disagreement along OPE rollouts: BC {mean['bc']:.4g}, accepted {mean['behaviour']:.4g} "
            f"({self.ratio - 1:+.0%}), learners {mean['learner']:.4g}: {verdict}"
        )


@dataclass
class Sensitivity:
    """Q's spread over actions at fixed states, over states, and their ratio."""

    within_state: float  # mean over states of the std of Q over actions
    across_states: float  # std over states of the mean of Q over actions
    ratio: float
    flat: bool

    def line(self) -> str:
        """One line for a terminal or a log."""
        verdict = "FLAT in the action: advantages and OPE are unreliable" if self.flat else "sensitive to the action"
        spread = f"Q spread over actions {self.within_state:.4g} vs over states {self.across_states:.4g}"
        return f"critics: {spread} (ratio {self.ratio:.3f}): {verdict}"


@torch.no_grad()
def action_sensitivity(
    q: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    observations: torch.Tensor,
    actions: torch.Tensor,
    num_states: int = 256,
    num_actions: int = 32,
    seed: int = 0,
) -> Sensitivity:
    """Q at ``num_states`` data states, each with ``num_actions`` actions drawn from the data's actions.

    Actions come from other transitions (the behaviour's own action distribution), so the spread
    measures how Q tells apart actions the data actually contains.
    """
    gen = torch.Generator().manual_seed(seed)
    n = observations.shape[0]
    states = observations[torch.randint(n, (num_states,), generator=gen)]
    picks = actions[torch.randint(n, (num_states * num_actions,), generator=gen)]
    obs = states.repeat_interleave(num_actions, 0)
    values = q(obs, picks).reshape(num_states, num_actions).double()
    within = float(values.std(1).mean())
    across = float(values.mean(1).std())
    ratio = within / max(across, 1e-12)
    return Sensitivity(within, across, ratio, ratio < FLAT_RATIO)


@dataclass
class Coverage:
    """How much the logged actions vary at a state: the BC mean's residual over the actions' variance."""

    unexplained: float  # mean over members of sum_dims E[(a - mu(s))^2] / sum_dims Var[a]
    narrow: bool

    def line(self) -> str:
        """One line for a terminal or a log."""
        share = f"{self.unexplained:.1%} of the logged actions' variance is not explained by the state (BC mean)"
        if self.narrow:
            verdict = (
                "about one action per state: Q cannot learn what other actions do (log with exploration: unio4 collect --action-noise)"
            )
        else:
            verdict = "the data shows alternatives at a state"
        return f"action coverage: {share}: {verdict}"


@torch.no_grad()
def action_coverage(
    mean: Callable[[torch.Tensor], torch.Tensor], observations: torch.Tensor, actions: torch.Tensor, num_states: int = 4096, seed: int = 0
) -> Coverage:
    """``1 - R^2`` of the behaviour-cloned mean action ``mean(obs)`` ((members, B, act) or (B, act)) on
    ``num_states`` data rows, pooled over action dimensions (a constant dimension adds nothing).
    """
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(observations.shape[0], (min(num_states, observations.shape[0]),), generator=gen)
    predicted = mean(observations[idx]).double()
    residual = (actions[idx].double() - predicted).square().mean(-2).sum(-1)  # (members,) or ()
    variance = actions.double().var(0, unbiased=False).sum()
    unexplained = float((residual / variance.clamp_min(1e-12)).mean())
    return Coverage(unexplained, unexplained < NARROW_COVERAGE)


def rank_correlation(estimates: list[float], truths: list[float]) -> float:
    """Spearman's rho (average ranks for ties) of two equally long lists of at least two values."""
    if len(estimates) != len(truths) or len(estimates) < 2:
        raise ValueError("rank_correlation: two lists of the same length, at least 2 values each")

    def ranks(values: list[float]) -> torch.Tensor:
        x = torch.tensor(values, dtype=torch.float64)
        order = torch.argsort(x)
        r = torch.empty_like(x)
        r[order] = torch.arange(len(x), dtype=torch.float64)
        for value in torch.unique(x):  # ties share their average rank
            tied = x == value
            r[tied] = r[tied].mean()
        return r

    a, b = ranks(estimates), ranks(truths)
    a, b = a - a.mean(), b - b.mean()
    denom = float(torch.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else 0.0
