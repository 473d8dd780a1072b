"""Severity scales shared by the layers, each ordered from best to worst."""
from __future__ import annotations

# Liveness of a component: the names of diagnostic_msgs/DiagnosticStatus levels 0..3.
LEVEL_ORDER = ('OK', 'WARN', 'ERROR', 'STALE')
# Maintenance risk of a component, from its remaining useful life and condition.
RISK_LEVELS = ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')
