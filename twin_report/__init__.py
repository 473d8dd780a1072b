"""Run reports: one self-contained HTML page of plots from a recorded (or live) twin run."""
