"""Online RL: PPO (ppo.py), the online loop (runner.py), its environments (envs.py, gym_env.py), reward
scaling and multi-process training (distributed.py).
"""
