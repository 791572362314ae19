"""Bad configs fail with one clear line naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.configs.conftest import write
from unio4.configs.loader import ConfigError
from unio4.robots.description import load_robot
from unio4.sim.config import load_task_config
from unio4.sim.task import Go1VelocityTask


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "robot: go1\ncommands:\n  lin_vel_xx: [0, 1]\n")
    with pytest.raises(ConfigError) as err:
        load_task_config(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "commands" in msg and "lin_vel_xx" in msg


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "episode_length_s: twenty\n")
    with pytest.raises(ConfigError, match=r"episode_length_s: expected float, got 'twenty'"):
        load_task_config(path)


def test_wrong_tuple_length_and_bad_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"commands.lin_vel_x: expected 2 items"):
        load_task_config(write(tmp_path, "commands:\n  lin_vel_x: [0, 1, 2]\n"))
    with pytest.raises(ConfigError, match=r"lower bound 1.0 > upper bound 0.0"):
        load_task_config(write(tmp_path, "commands:\n  lin_vel_x: [1, 0]\n"))


def test_unknown_reward_term(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rewards.weights: unknown reward term 'trackign_lin_vel'"):
        load_task_config(write(tmp_path, "rewards:\n  weights: {trackign_lin_vel: 1.0}\n"))


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found"):
        load_task_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"robot file not found"):
        load_robot("go7")
    cfg = load_task_config(write(tmp_path, "robot: go7\n"))
    with pytest.raises(ConfigError, match=r"go7.yaml: robot file not found \(known robots: \['go1'\]\)"):
        Go1VelocityTask(cfg, 1)


def test_malformed_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"malformed YAML"):
        load_task_config(write(tmp_path, "commands: [unclosed\n"))


def test_overrides_are_validated() -> None:
    cfg = load_task_config("go1_flat", ["commands.lin_vel_x=[0.5, 0.5]"])
    assert cfg.commands.lin_vel_x == (0.5, 0.5)
    with pytest.raises(ConfigError, match=r"rewards\.tracking_sigma: expected float"):
        load_task_config("go1_flat", ["rewards.tracking_sigma=abc"])


def test_exponent_floats_parse_as_numbers(tmp_path: Path) -> None:
    # PyYAML's YAML 1.1 reads "3e-4" as a string; researchers write learning rates that way.
    cfg = load_task_config(write(tmp_path, "episode_length_s: 2e1\n"), overrides=["rewards.tracking_sigma=25e-2"])
    assert cfg.episode_length_s == 20.0 and cfg.rewards.tracking_sigma == 0.25


# ---- numbers are finite and in range; YAML is bounded -------------------------------------------
ROOT_CONFIGS = [
    "unio4.sim.config.TaskConfig",
    "unio4.learning.online.runner.OnlineConfig",
    "unio4.learning.offline.pipeline.OfflineConfig",
    "unio4.learning.offline.bc.BCConfig",
    "unio4.learning.data.generate.GenerateConfig",
    "unio4.learning.robot.session.SessionConfig",
    "unio4.deploy.runtime.RuntimeConfig",
    "unio4.sim.emulator.EmulatorConfig",
    "unio4.sim.gait.GaitConfig",
    "unio4.robots.description.RobotDescription",
    "unio4.learning.data.wtw_import.WtwLogFormat",
    "unio4.learning.robot.identify.IdentifyConfig",
]


def _config_classes() -> list[type]:
    """Every dataclass reachable from the root configs through their fields."""
    import dataclasses
    import importlib
    import typing

    seen: list[type] = []
    todo = []
    for dotted in ROOT_CONFIGS:
        module, _, name = dotted.rpartition(".")
        todo.append(getattr(importlib.import_module(module), name))
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        for tp in typing.get_type_hints(cls).values():
            for arg in (tp, *typing.get_args(tp), *(a for t in typing.get_args(tp) for a in typing.get_args(t))):
                if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                    todo.append(arg)
    return seen


def _is_numeric(tp: object) -> bool:
    import typing

    return tp in (int, float) or any(_is_numeric(a) for a in typing.get_args(tp) if a is not type(None))


def test_every_numeric_config_field_declares_its_range() -> None:
    import dataclasses
    import typing

    missing = []
    classes = _config_classes()
    assert len(classes) > 25
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if _is_numeric(hints[f.name]) and "bounds" not in f.metadata:
                missing.append(f"{cls.__name__}.{f.name}")
    assert not missing, f"numeric fields without bounded()/finite(): {missing}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("damping_hold_s=.inf", r"go1.yaml: damping_hold_s: expected a finite number, got inf"),
        ("safety.stale_ms=.nan", r"go1.yaml: safety.stale_ms: expected a finite number, got nan"),
        ("safety.stale_ms=0", r"safety.stale_ms: expected a value > 0 and <= 1000"),
        ("safety.torque_fraction=1.5", r"safety.torque_fraction: expected a value > 0 and <= 1"),
        ("command=[0.5,0,1e9]", r"command: expected a value >= -5 and <= 5"),
    ],
)
def test_deploy_config_rejects_non_finite_and_out_of_range(override: str, message: str) -> None:
    from unio4.configs.loader import load, resolve_config_path
    from unio4.deploy.runtime import RuntimeConfig

    with pytest.raises(ConfigError, match=message):
        load(RuntimeConfig, resolve_config_path("go1", "deploy"), [override])


def test_task_and_training_configs_reject_non_finite_values() -> None:
    from unio4.configs.loader import load, resolve_config_path
    from unio4.learning.online.runner import OnlineConfig

    with pytest.raises(ConfigError, match=r"rewards.weights.tracking_lin_vel: expected a finite number"):
        load_task_config("go1_flat", ["rewards.weights.tracking_lin_vel=.nan"])
    with pytest.raises(ConfigError, match=r"randomization.friction: expected a value >= 0"):
        load_task_config("go1_flat", ["randomization.friction=[-1,1]"])
    with pytest.raises(ConfigError, match=r"ppo.gamma: expected a value > 0 and <= 1"):
        load(OnlineConfig, resolve_config_path("ppo_go1", "train"), ["ppo.gamma=1.5"])


def test_yaml_alias_bomb_and_huge_file_are_refused(tmp_path: Path) -> None:
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, 8):
        bomb.append(f"{chr(97 + level)}: &{chr(97 + level)} [" + ",".join([f"*{chr(96 + level)}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(bomb) + "\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml: .*malformed YAML.*expands to more than"):
        load_task_config(path)
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (5 << 20) + "\n")
    with pytest.raises(ConfigError, match=r"big.yaml: .*more than"):
        load_task_config(big)
    # anchors and aliases of a normal size still work
    ok = tmp_path / "ok.yaml"
    ok.write_text("commands:\n  lin_vel_x: &r [0.0, 0.5]\n  lin_vel_y: *r\n")
    assert load_task_config(ok).commands.lin_vel_y == (0.0, 0.5)


def test_a_preset_states_only_what_it_changes_over_its_base(tmp_path: Path) -> None:
    from unio4.configs.loader import CONFIG_DIR, load
    from unio4.learning.offline.pipeline import OfflineConfig

    base = load(OfflineConfig, CONFIG_DIR / "train" / "uni_o4_offline.yaml")
    (tmp_path / "paper.yaml").write_text((CONFIG_DIR / "train" / "uni_o4_offline.yaml").read_text())
    (tmp_path / "wide.yaml").write_text("base: paper\nbc: {network: {actor_hidden: [512, 512]}}\n")
    (tmp_path / "wide_short.yaml").write_text("base: wide\ncritics: {steps: 10}\n")
    cfg = load(OfflineConfig, tmp_path / "wide_short.yaml")
    assert cfg.critics.steps == 10 and cfg.bc.network.actor_hidden == (512, 512)
    # everything else is the base's, nested mappings merged key by key
    assert cfg.bc.network.critic_hidden == base.bc.network.critic_hidden and cfg.critics.q_hidden == base.critics.q_hidden
    (tmp_path / "loop_a.yaml").write_text("base: loop_b\n")
    (tmp_path / "loop_b.yaml").write_text("base: loop_a\n")
    with pytest.raises(ConfigError, match="cycle"):
        load(OfflineConfig, tmp_path / "loop_a.yaml")
    (tmp_path / "escape.yaml").write_text("base: ../elsewhere\n")
    with pytest.raises(ConfigError, match="preset beside it"):
        load(OfflineConfig, tmp_path / "escape.yaml")
    (tmp_path / "missing.yaml").write_text("base: nowhere\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: config file not found"):
        load(OfflineConfig, tmp_path / "missing.yaml")


def test_every_training_preset_loads() -> None:
    """The per-dataset presets (``base:`` over the paper's) resolve and validate, with what they change."""
    from unio4.configs.loader import CONFIG_DIR, load
    from unio4.learning.offline.pipeline import OfflineConfig
    from unio4.learning.online.runner import OnlineConfig

    offline = {p.stem: load(OfflineConfig, p) for p in (CONFIG_DIR / "train").glob("uni_o4_offline*.yaml")}
    online = {p.stem: load(OnlineConfig, p) for p in (CONFIG_DIR / "train").glob("uni_o4_online*.yaml")}
    assert len(offline) == 9 and len(online) == 5
    # the model-disagreement gate is the Go1 preset's; the generic CPU preset keeps the paper's AM-Q gate
    assert offline["uni_o4_offline_go1"].improvement.max_drift == 1.1
    assert offline["uni_o4_offline_cpu"].improvement.max_drift is None
    # Q and the model on the logged critic state on Go1 logs only; MuJoCo data has none
    assert offline["uni_o4_offline_go1"].q_observations == "critic" and offline["uni_o4_offline_cpu"].q_observations == "policy"
    assert offline["uni_o4_offline_go1"].critics == offline["uni_o4_offline_cpu"].critics
    assert offline["uni_o4_offline_walker2d_medium_replay"].critics.steps == 500_000
    assert offline["uni_o4_offline_walker2d_medium_replay"].bc.network.actor_hidden == (512, 512, 512)
    cheetah = offline["uni_o4_offline_halfcheetah_medium_replay"].bc.network
    assert (cheetah.activation, cheetah.critic_activation, cheetah.normalize_observations) == ("tanh", "relu", False)
    assert online["uni_o4_online_halfcheetah_medium_replay"].ppo.epochs == 20
    # model states kept in the data's range where no termination rule ends a rollout (halfcheetah) only
    assert sorted(name for name, cfg in offline.items() if cfg.ope.clip_states) == [
        "uni_o4_offline_halfcheetah_medium",
        "uni_o4_offline_halfcheetah_medium_replay",
    ]
    from torch import nn

    from unio4.learning.policy import GaussianActor, ValueCritic

    # tanh in the policy, ReLU in V, as the authors ran halfcheetah
    assert any(isinstance(m, nn.Tanh) for m in GaussianActor(17, 6, 1.0, cheetah).modules())
    v = list(ValueCritic(17, cheetah).modules())
    assert any(isinstance(m, nn.ReLU) for m in v) and not any(isinstance(m, nn.Tanh) for m in v)


def test_the_offline_paper_presets_set_every_switch_the_authors_way() -> None:
    """Each ``uni_o4_paper_offline*`` preset (Go1's aside) has the authors' setting in every switchable row;
    the CPU one keeps the CPU preset's sizes."""
    from unio4.configs.loader import CONFIG_DIR, load
    from unio4.learning.offline.pipeline import OfflineConfig

    presets = {p.stem: load(OfflineConfig, p) for p in (CONFIG_DIR / "train").glob("uni_o4_paper_offline*.yaml") if "go1" not in p.stem}
    assert len(presets) == 8
    for name, cfg in presets.items():
        policy = (cfg.output, cfg.critics.bootstrap_timeouts, cfg.bc.regularizer, cfg.bc.network.obs_clip)
        model = (cfg.dynamics.member_loss, cfg.dynamics.bootstrap, cfg.ope.terminal, cfg.ope.fresh_states)
        assert (policy, model) == (("learner", False, "paper", None), ("sum", True, "drop", True)), name
    cpu, sizes = presets["uni_o4_paper_offline_cpu"], load(OfflineConfig, CONFIG_DIR / "train" / "uni_o4_offline_cpu.yaml")
    assert (cpu.critics.steps, cpu.bc.steps, cpu.dynamics.max_epochs) == (sizes.critics.steps, sizes.bc.steps, sizes.dynamics.max_epochs)
