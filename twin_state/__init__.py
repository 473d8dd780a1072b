"""The twin's state layer: kinematics, the state schema, its history and fidelity checks."""
