"""Settings for the commands that talk to brokers and storage: file, then environment, then flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgegen.gateway.config import Settings, load_settings
from edgegen.gateway.errors import ConfigError
from edgegen.gateway.logs import configure_logging


def settings_or_exit(config: Path | None, given: dict[str, Any]) -> Settings:
    """Load and validate settings; on a bad key print what was expected and exit with status 2."""
    try:
        settings = load_settings(config, flags=given)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.gateway.log_format, secrets=settings.secrets())
    return settings
