"""Ground layer, no ROS: configuration schemas, time, signals, levels, robot model and workers."""
