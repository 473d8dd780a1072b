"""Bridges between the twin and plant/IT systems: MQTT, OPC UA and cloud storage."""
