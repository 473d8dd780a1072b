"""Synchronization of the cell's sensor streams into frames on a common timeline."""
