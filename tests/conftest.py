"""Shared fixtures. Every test runs on CPU; torch uses one thread so two cores serve physics."""

from __future__ import annotations

import pytest
import torch

from robots.description import RobotDescription, load_robot

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def go1() -> RobotDescription:
    return load_robot("go1")
