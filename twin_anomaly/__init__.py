"""Anomaly detection: per-sensor scores, learned detectors and alarm events on the synchronized frames."""
