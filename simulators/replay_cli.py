"""``edgegen replay``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Added by the replay work in progress."""
