"""The fleet: health, alarms and shared maintenance resources across several twins."""
