"""Learning on the robot: the session loop (session.py), its update modes (session_update.py) and the
identification of a robot from its walks (identify.py).
"""
