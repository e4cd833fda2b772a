"""Copy the node firmware, models and a board configuration to a MicroPython board with mpremote.

The plan is computed first (and printed with --dry-run): every file, where it goes, and the mpremote commands.
The board configuration is validated on the host with the firmware's own checks before anything is copied.
Files go to /lib/firmware_py/... as .py sources, or as .mpy compiled by mpy-cross for the board's architecture.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgegen import firmware_py
from edgegen.firmware_py.config import validate
from edgegen.firmware_py.errors import ConfigError
from edgegen.hil.errors import DeployError

FIRMWARE_DIR = Path(firmware_py.__file__).parent
MAIN_PY = 'from firmware_py.app import main\n\nmain("config.json")\n'  # the board starts in /
ARCHS = (
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
)


def firmware_files() -> list[Path]:
    """Every module a board needs, relative to the firmware package (no host-only files)."""
    return sorted(p.relative_to(FIRMWARE_DIR) for p in FIRMWARE_DIR.rglob("*.py") if p.name != "manifest.py")


@dataclass
class Plan:
    copies: list[tuple[Path, str]] = field(default_factory=list)  # local file -> remote path
    directories: list[str] = field(default_factory=list)

    def commands(self, port: str) -> list[list[str]]:
        base = ["mpremote", "connect", port]
        cmds = [[*base, "fs", "mkdir", f":{d}"] for d in self.directories]
        cmds += [[*base, "fs", "cp", str(local), f":{remote}"] for local, remote in self.copies]
        return [*cmds, [*base, "reset"]]


def plan(config: Path, models: list[Path], staging: Path, mpy_arch: str | None = None) -> Plan:
    """Validate the configuration and stage what goes to the board (compiled when mpy_arch is given)."""
    try:
        validate(json.loads(config.read_text()))
    except (OSError, ValueError, ConfigError) as exc:
        raise DeployError(f"{config}: {exc}") from exc
    if mpy_arch is not None and mpy_arch not in ARCHS:
        raise DeployError(f"--mpy {mpy_arch!r}: expected one of {', '.join(ARCHS)}")
    result = Plan()
    dirs = {"/lib", "/lib/firmware_py", "/models"}
    for rel in firmware_files():
        dirs.update("/lib/firmware_py/" + "/".join(rel.parts[:i]) for i in range(1, len(rel.parts)))
        source = FIRMWARE_DIR / rel
        remote = "/lib/firmware_py/" + rel.as_posix()
        if mpy_arch is not None:
            compiled = staging / rel.with_suffix(".mpy")
            compiled.parent.mkdir(parents=True, exist_ok=True)
            _compile(source, compiled, mpy_arch)
            result.copies.append((compiled, remote[:-3] + ".mpy"))
        else:
            result.copies.append((source, remote))
    for model in models:
        if not model.is_file():
            raise DeployError(f"model {model} does not exist")
        result.copies.append((model, f"/models/{model.name}"))
    main_py = staging / "main.py"
    main_py.write_text(MAIN_PY)
    result.copies.append((config, "/config.json"))
    result.copies.append((main_py, "/main.py"))
    result.directories = sorted(dirs, key=lambda d: (d.count("/"), d))
    return result


def _compile(source: Path, target: Path, arch: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mpy_cross", f"-march={arch}", "-o", str(target), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DeployError(f"mpy-cross {source.name}: {done.stderr.strip()}")


def deploy(port: str, config: Path, models: list[Path], mpy_arch: str | None, dry_run: bool) -> list[list[str]]:
    """Run (or, dry, just return) the mpremote commands that put the node on the board at ``port``."""
    with tempfile.TemporaryDirectory(prefix="edgegen-deploy-") as tmp:
        commands = plan(config, models, Path(tmp), mpy_arch).commands(port)
        if dry_run:
            return commands
        if shutil.which("mpremote") is None:
            raise DeployError("mpremote is not installed: pip install 'edgegen[hil]'")
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
            existing_dir = command[3:5] == ["fs", "mkdir"] and "EEXIST" in done.stderr
            if done.returncode != 0 and not existing_dir:
                raise DeployError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
        return commands
