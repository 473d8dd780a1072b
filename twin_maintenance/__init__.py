"""Predictive maintenance: condition indicators, remaining useful life, risk and the maintenance plan."""
