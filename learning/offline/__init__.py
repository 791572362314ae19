"""Uni-O4's offline phase: critics, the behaviour-cloning ensemble, dynamics for off-policy evaluation, improvement."""
