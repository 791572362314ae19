"""Flat and rough terrain with a legged_gym-style curriculum.

Rough terrain is one heightfield made of square tiles: columns along x are difficulty levels,
rows along y are terrain types (slope pyramid, random roughness, stairs pyramid, discrete
obstacles), inside a flat border so that robots leaving the outer tiles walk on instead of off the
edge. Each env is spawned at the centre of its tile; at reset an env that walked half a tile moves
one level up, one that fell or walked less than half its commanded distance moves one level down, and
one that solved the hardest level is sent to a random level (so the hardest tiles stay in use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from unio4.configs.loader import bounded, check_fields
from unio4.robots.mjcf import HeightfieldSpec

TerrainType = Literal["slope", "rough", "stairs", "discrete"]


@dataclass(frozen=True)
class TerrainConfig:
    type: Literal["flat", "rough"] = "flat"
    tile_size: float = bounded(4.0, gt=0)  # m
    resolution: float = bounded(0.1, gt=0)  # m per heightfield sample
    num_levels: int = bounded(5, ge=1)
    types: tuple[TerrainType, ...] = ("slope", "rough", "stairs", "discrete")
    max_slope: float = bounded(0.35, ge=0, lt=1.5)  # rise over run at the hardest level
    max_roughness: float = bounded(0.06, ge=0)  # m
    max_step_height: float = bounded(0.12, ge=0)  # m
    max_obstacle_height: float = bounded(0.10, ge=0)  # m
    curriculum: bool = True
    # How far a robot "walked": "progress", along its commands (the integral of its velocity in the
    # commanded direction), and a fall moves it down; "displacement", legged_gym's straight line from
    # the spawn, which yaw-rate commands curve (docs/benchmarks/time-to-walk.md,
    # "What held the curriculum back").
    curriculum_rule: Literal["progress", "displacement"] = "progress"
    border_size: float = bounded(5.0, ge=0)  # m of flat ground around the tiles
    # MuJoCo solimp of the heightfield, overriding the feet's soft pads: they sink below the prisms' tops
    # and catch on their side faces (docs/benchmarks/time-to-walk.md, "What held the curriculum back").
    contact_solimp: tuple[float, float, float] = bounded((0.5, 0.95, 0.01), gt=0)
    min_init_level: int = bounded(0, ge=0)  # robots start on levels min..max (evaluation: one level alone)
    max_init_level: int = bounded(1, ge=0)
    spawn_footprint: float = bounded(0.4, gt=0)  # m: robots spawn above the highest sample within this half-width of the base
    spawn_clearance: float = bounded(0.06, ge=0)  # m added on heightfields: randomised initial joints reach lower than the nominal stance
    seed: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        check_fields(self)  # the declared ranges and choices, for a config built in Python as for one loaded from YAML
        if not self.types:  # a length, which no range expresses
            raise ValueError("types: at least one terrain type is required")
        if len(self.contact_solimp) != 3 or not self.contact_solimp[0] <= self.contact_solimp[1] < 1:  # MuJoCo's impedance
            raise ValueError(f"contact_solimp: expected [dmin, dmax, width], 0<dmin<=dmax<1, width>0; got {list(self.contact_solimp)}")
        if not self.max_init_level < self.num_levels:  # across fields: a level the curriculum has
            raise ValueError(f"max_init_level must be in [0, {self.num_levels - 1}]")
        if not self.min_init_level <= self.max_init_level:
            raise ValueError(f"min_init_level must be in [0, max_init_level={self.max_init_level}]")


@dataclass
class Terrain:
    """Heights on a grid plus the tile layout; ``heights[row=y, col=x]`` in metres (>= 0)."""

    cfg: TerrainConfig
    heights: np.ndarray
    spec: HeightfieldSpec | None
    levels: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    types: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    _heights_t: torch.Tensor = field(init=False, repr=False)  # heights as a tensor, on the device last asked for

    @property
    def is_flat(self) -> bool:
        return self.spec is None

    def height_at(self, xy: torch.Tensor) -> torch.Tensor:
        """Terrain height under world points ``xy`` (..., 2) (nearest sample)."""
        if self.spec is None:
            return torch.zeros(xy.shape[:-1], dtype=xy.dtype, device=xy.device)
        s, res = self.spec, self.cfg.resolution
        col = torch.round((xy[..., 0] + s.size_x) / res).long().clamp(0, s.ncol - 1)
        row = torch.round((xy[..., 1] + s.size_y) / res).long().clamp(0, s.nrow - 1)
        if self._heights_t.device != xy.device:
            self._heights_t = self._heights_t.to(xy.device)
        return self._heights_t[row, col].to(xy.dtype)

    def spawn_height_at(self, xy: torch.Tensor) -> torch.Tensor:
        """Highest terrain under the robot's footprint around base points ``xy`` (N, 2).

        Spawning above the nearest sample alone puts feet inside a stair or a bump beside the base,
        and engines resolve such deep initial penetrations differently (a launch in one, a slow
        push-out in another).
        """
        if self.spec is None:
            return self.height_at(xy)
        reach = self.cfg.spawn_footprint
        steps = torch.arange(-reach, reach + 1e-6, self.cfg.resolution, dtype=xy.dtype, device=xy.device)
        offsets = torch.cartesian_prod(steps, steps)
        return self.height_at(xy.unsqueeze(1) + offsets.unsqueeze(0)).amax(dim=1) + self.cfg.spawn_clearance

    def __post_init__(self) -> None:
        self._heights_t = torch.as_tensor(self.heights, dtype=torch.float32)

    def origins(self, levels: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """World xy of the centre of tile (level, type)."""
        if self.spec is None:
            return torch.zeros(levels.shape[0], 2, device=levels.device)
        n, res = _tile_samples(self.cfg), self.cfg.resolution
        stride, start = n * res, (_border_samples(self.cfg) + (n - 1) / 2) * res
        x = -self.spec.size_x + start + levels.float() * stride
        y = -self.spec.size_y + start + types.float() * stride
        return torch.stack([x, y], dim=-1)

    def assign(self, num_envs: int, generator: torch.Generator) -> None:
        """Initial tile of each env: random type, level in ``[min_init_level, max_init_level]``."""
        dev = generator.device
        self.levels = torch.randint(self.cfg.min_init_level, self.cfg.max_init_level + 1, (num_envs,), generator=generator, device=dev)
        self.types = torch.randint(0, len(self.cfg.types), (num_envs,), generator=generator, device=dev)

    def update_curriculum(
        self,
        env_ids: torch.Tensor,
        distance: torch.Tensor,
        commanded_distance: torch.Tensor,
        generator: torch.Generator,
        fell: torch.Tensor | None = None,
    ) -> None:
        """Move envs that just ended up or down a level by how far they walked; ``fell``: a fall moves down."""
        if self.spec is None or not self.cfg.curriculum or env_ids.numel() == 0:
            return
        up, down = level_moves(self.cfg, distance, commanded_distance, fell)
        levels = self.levels[env_ids] + up.long() - down.long()
        top = self.cfg.num_levels
        solved = levels >= top
        random_levels = torch.randint(0, top, (int(env_ids.numel()),), generator=generator, device=generator.device)
        self.levels[env_ids] = torch.where(solved, random_levels, levels.clamp(min=0))

    @property
    def mean_level(self) -> float:
        return float(self.levels.float().mean()) if self.levels.numel() else 0.0


def level_moves(
    cfg: TerrainConfig, distance: torch.Tensor, commanded_distance: torch.Tensor, fell: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(up, down) per robot: up after walking half a tile without a fall; down after a fall or less than half
    the commanded distance."""
    fell = torch.zeros_like(distance, dtype=torch.bool) if fell is None else fell
    up = (distance > cfg.tile_size / 2) & ~fell
    down = ((distance < 0.5 * commanded_distance) | fell) & ~up
    return up, down


def _tile_samples(cfg: TerrainConfig) -> int:
    return int(round(cfg.tile_size / cfg.resolution)) + 1


def _border_samples(cfg: TerrainConfig) -> int:
    return int(round(cfg.border_size / cfg.resolution))


def _tile(kind: TerrainType, difficulty: float, n: int, cfg: TerrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Heights of one ``n x n`` tile at ``difficulty`` in [0, 1]."""
    res = cfg.resolution
    coords = (np.arange(n) - (n - 1) / 2) * res
    # distance to the tile border along the shorter axis: pyramids rise towards the centre
    half = (n - 1) / 2 * res
    border = half - np.maximum(np.abs(coords)[:, None], np.abs(coords)[None, :])
    platform = 0.5  # flat half-width at the top, m
    if kind == "slope":
        return np.clip(border, 0, half - platform) * cfg.max_slope * difficulty
    if kind == "rough":
        return rng.uniform(0.0, cfg.max_roughness * max(difficulty, 0.1), size=(n, n))
    if kind == "stairs":
        step_width = 0.3
        steps = np.floor(np.clip(border, 0, half - platform) / step_width)
        return steps * cfg.max_step_height * difficulty
    heights = np.zeros((n, n))
    block = max(1, int(round(0.4 / res)))
    for _ in range(int(6 + 14 * difficulty)):
        r, c = rng.integers(0, n - block, size=2)
        heights[r : r + block, c : c + block] = rng.uniform(0.3, 1.0) * cfg.max_obstacle_height * max(difficulty, 0.1)
    centre = slice(n // 2 - block, n // 2 + block)
    heights[centre, centre] = 0.0
    return heights


def make_terrain(cfg: TerrainConfig) -> Terrain:
    """Build the heightfield (or a flat floor) described by ``cfg``."""
    if cfg.type == "flat":
        return Terrain(cfg, np.zeros((1, 1)), None)
    rng = np.random.default_rng(cfg.seed)
    n = _tile_samples(cfg)
    rows, cols = len(cfg.types) * n, cfg.num_levels * n
    heights = np.zeros((rows, cols))
    for ti, kind in enumerate(cfg.types):
        for level in range(cfg.num_levels):
            difficulty = (level + 1) / cfg.num_levels
            heights[ti * n : (ti + 1) * n, level * n : (level + 1) * n] = _tile(kind, difficulty, n, cfg, rng)
    heights = np.pad(heights, _border_samples(cfg))  # flat ground (height 0) around the tiles
    rows, cols = heights.shape
    max_height = max(float(heights.max()), 1e-3)
    spec = HeightfieldSpec(
        nrow=rows,
        ncol=cols,
        size_x=(cols - 1) * cfg.resolution / 2,
        size_y=(rows - 1) * cfg.resolution / 2,
        max_height=max_height,
        solimp=cfg.contact_solimp,
    )
    return Terrain(cfg, heights, spec)
