"""unio4: Uni-O4 offline and online RL for the Unitree Go1 (the ``unio4`` CLI and shared config)."""

__version__ = "0.1.0"
