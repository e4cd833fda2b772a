"""``edgegen record``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Added by the record work in progress."""
