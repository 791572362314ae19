"""Offline data: the dataset format, logging it in simulation, packing robot logs, generating D4RL-style sets."""
