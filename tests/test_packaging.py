"""What a user installs: one top-level package, and a lock file that pins what the tests run on.

The wheel is built offline with hatchling (the dev extra brings it) and inspected; the slow test installs it into a
directory of its own and runs ``edgegen demo`` from a working directory that has a ``models`` package of its own,
the clash that generic top-level names caused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

import edgegen

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "test.lock"
PLATFORMS = {  # the environments the lock must cover: CI's (x86-64) and arm64 Linux, Python 3.11
    "x86_64": {"platform_machine": "x86_64", "python_full_version": "3.11.7", "python_version": "3.11"},
    "aarch64": {"platform_machine": "aarch64", "python_full_version": "3.11.7", "python_version": "3.11"},
}


def _locked() -> list[tuple[str, Version, Marker | None]]:
    """(name, version, marker) per pinned line of the lock."""
    pins = []
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if m:
            marker = Marker(m.group(3)) if m.group(3) else None
            pins.append((m.group(1).lower().replace("_", "-"), Version(m.group(2)), marker))
    return pins


def _required(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(r) for r in names]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_the_lock_pins_every_test_dependency_within_its_range(platform: str) -> None:
    env = PLATFORMS[platform]
    pins = {name: version for name, version, marker in _locked() if marker is None or marker.evaluate(env)}
    for req in _required(("dev", "train")):
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{req} is not in {LOCK.name} for {platform}: regenerate it (README, Tests)"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name]}: {req}"
        )


def _build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("edgegen-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.slow
def test_the_wheel_installs_exactly_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"edgegen", f"edgegen-{edgegen.__version__}.dist-info"}
    assert "edgegen/models/artifacts/generative/skab.tflite" in names  # the artifacts ship as package data
    assert not [n for n in names if n.endswith(".key")]  # never a private key
    entry_points = zipfile.ZipFile(wheel).read(f"edgegen-{edgegen.__version__}.dist-info/entry_points.txt")
    assert b"edgegen = edgegen.cli:main" in entry_points


@pytest.mark.slow
@pytest.mark.e2e
def test_edgegen_demo_runs_from_the_wheel_beside_a_users_own_models_package(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    (work / "models" / "__init__.py").write_text("SENTINEL = 'the user owns this package'\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import edgegen, models; print(edgegen.__file__); print(models.SENTINEL)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.splitlines() == [str(site / "edgegen" / "__init__.py"), "the user owns this package"]
    demo = subprocess.run(
        [sys.executable, "-m", "edgegen", "demo", "--nodes", "1", "--steps", "300", "--speed", "120"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "all values stored exactly once" in demo.stdout
    assert (work / "edgegen-demo" / "report.html").stat().st_size > 10_000
