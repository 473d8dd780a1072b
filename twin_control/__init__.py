"""Closing the loop: safety arbitration and the command link from the twin to the cell."""
