"""Bring-up of the twin: node table, launcher, configuration and health monitoring."""
