"""Boards and hardware in the loop: deploying firmware to boards with mpremote (more to come: the HIL harness)."""
