"""Rosbag2 MCAP recording and timed replay of the twin's topics."""
