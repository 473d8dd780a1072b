"""ROS glue: typed parameters, node entry point, QoS, stamps and diagnostics helpers shared by every node."""
