"""Real mosquitto and influxd processes on 127.0.0.1, on free ports, with throwaway directories.

The test script (.ci/test.sh) installs both from Debian. The tests' fixtures (tests/support/servers.py, which
turns a missing binary into a skip) and the benchmarks start them; their owner can stop, pause and kill them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path


class ServerMissing(RuntimeError):
    """The server's binary is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str) -> str:
    """The binary's path (PATH, then /usr/sbin and /usr/bin, where Debian puts them), or ServerMissing."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if path is None:
        raise ServerMissing(f"{name} is not installed (the README's test command installs it)")
    return path


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout_s} s")


class Server:
    """A server process: start, stop, pause (SIGSTOP) and resume (SIGCONT)."""

    name = "server"
    locate: Callable[[str], str] = staticmethod(find_binary)  # tests replace it: a missing binary skips the test

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        _wait(self.ready, self.proc, self.name)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)


class Mosquitto(Server):
    """mosquitto on 127.0.0.1. ``persistence``: sessions survive a restart (saved on SIGTERM).
    ``passwords``: user -> password; anonymous clients are then refused. ``tls``: the listener speaks TLS only."""

    name = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        persistence: bool = False,
        passwords: dict[str, str] | None = None,
        tls: tuple[Path, Path, Path] | None = None,  # CA, certificate, key
    ) -> None:
        self.binary = self.locate("mosquitto")
        super().__init__(workdir)
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # run as root, mosquitto would switch to "mosquitto"
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if tls is not None:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/", "autosave_interval 0"]
        else:
            lines.append("persistence false")
        if passwords:
            password_file = workdir / "passwords"
            password_file.touch()
            tool = self.locate("mosquitto_passwd")
            for user, password in passwords.items():
                subprocess.run([tool, "-b", str(password_file), user, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf)]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False


class InfluxDB(Server):
    name = "influxd"

    def __init__(self, workdir: Path) -> None:
        self.binary = self.locate("influxd")
        super().__init__(workdir)
        self.rpc_port = free_port()
        self.conf = workdir / "influxdb.conf"
        self.conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{workdir}/meta"\n'
            f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-config", str(self.conf)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as response:
                return bool(response.status == 204)
        except (urllib.error.URLError, OSError):
            return False

    def create_database(self, name: str) -> None:
        """CREATE DATABASE ``name`` (idempotent)."""
        self._post(f"/query?q=CREATE+DATABASE+{urllib.parse.quote(name)}", b"")

    def write(self, database: str, lines: str, precision: str = "u", deadline_s: float = 10.0) -> None:
        """Write line protocol. A database created a moment ago can answer 404 "database not found" on a busy
        machine (seen once in CI): that answer is retried until ``deadline_s``; any other error is raised."""
        path = f"/write?db={urllib.parse.quote(database)}&precision={precision}"
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                self._post(path, lines.encode())
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                reply.read()
        except urllib.error.HTTPError as exc:
            exc.msg = f"{exc.msg}: {exc.read().decode(errors='replace').strip()}"  # InfluxDB says why in the body
            raise
