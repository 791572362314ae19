"""Yardsticks of learning: time to walk (and its rsl_rl peer), the walk benchmark over seeds, and the
offline stages' speed.
"""
