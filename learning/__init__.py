"""Uni-O4: offline data, the offline phase, PPO online and on the robot, export to bundles."""
