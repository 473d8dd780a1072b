"""Sensor drivers and the wire formats they read."""
