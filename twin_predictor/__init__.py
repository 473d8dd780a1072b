"""Prediction: a physics-informed model of the arm's dynamics, trained, evaluated and rolled out live."""
