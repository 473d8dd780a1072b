"""Analytics layer: prediction, anomaly detection and predictive maintenance on the twin's data."""
