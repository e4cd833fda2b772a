"""Throwaway X.509 material made with the openssl command: a CA and a server certificate for localhost."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class ServerCerts:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        pytest.fail("openssl is not installed (the README's test command installs it)")
    subprocess.run([tool, *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> Path:
    """A self-signed CA: ``name``.crt (PEM, for mosquitto) and ``name``.der (for MicroPython's mbedtls)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        cwd=directory,
    )
    _openssl("x509", "-in", f"{name}.crt", "-outform", "DER", "-out", f"{name}.der", cwd=directory)
    return directory / f"{name}.crt"


def server_certs(directory: Path) -> ServerCerts:
    """A CA, and a server certificate it signed for localhost / 127.0.0.1."""
    ca = make_ca(directory, "edgegen-test-ca")
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        ca.name,
        "-CAkey",
        "edgegen-test-ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
        cwd=directory,
    )
    return ServerCerts(ca, directory / "server.crt", directory / "server.key")
