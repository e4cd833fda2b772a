"""`edgegen generate` storing what it generates as the gateway stores data, run as a user runs it (a subprocess),
with the shipped SKAB model (no TensorFlow needed): a real InfluxDB 1.6.7, SQLite from the environment, and an
InfluxDB 2.x configured by a file (a scripted HTTP server: no 2.x server can be installed here)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.scripted_http import Reply, Request, ScriptedHttpServer
from tests.support.servers import InfluxDB

pytestmark = [pytest.mark.slow, pytest.mark.e2e]  # the command in a process of its own, per test

GENERATE = [sys.executable, "-m", "edgegen.cli", "generate", "--model", "skab", "--mode", "valve1", "--seed", "5"]
SERIES = ["synthetic-skab-valve1-5-0", "synthetic-skab-valve1-5-1"]
LABELS = "failure_mode=valve1,generator=edgegen-gen/1,model=skab"
CHANNELS = 8  # the SKAB model's


def _env(**extra: str) -> dict[str, str]:
    """The test process's environment without any EDGEGEN_ setting, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("EDGEGEN_")}, **extra}


def _generate(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GENERATE, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=_env(**env)
    )


def _select(server: InfluxDB, database: str, q: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"db": database, "q": q})
    with urllib.request.urlopen(f"{server.url}/query?{query}", timeout=10) as response:
        result = json.loads(response.read())["results"][0]
    assert "error" not in result, result
    return [
        dict(zip(s["columns"], row, strict=True)) | s.get("tags", {})
        for s in result.get("series", [])
        for row in s["values"]
    ]


def _counts(server: InfluxDB, database: str) -> dict[tuple[str, ...], list[int]]:
    """Per stored series (its labels), the count of every channel."""
    rows = _select(server, database, "SELECT count(*) FROM synthetic WHERE \"synthetic\" = 'true' GROUP BY *")
    return {
        (r["series"], r["failure_mode"], r["generator"], r["model"], r["synthetic"]): [
            v for k, v in r.items() if k.startswith("count_")
        ]
        for r in rows
    }


@pytest.mark.influxdb
def test_influx_stores_every_point_with_its_labels_and_a_rerun_changes_nothing(
    influxdb: InfluxDB, influx_database: str, tmp_path: Path
) -> None:
    out = tmp_path / "valve1.csv"
    args = ("--n", "2", "--length", "30", "--influx", influxdb.url, "--database", influx_database)
    done = _generate(*args, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = f"60 points -> {influxdb.url} database {influx_database} (synthetic=true, failure_mode=valve1)"
    assert done.stdout.strip().endswith(f"60 rows -> {out}; {stored}")
    expected = {(s, "valve1", "edgegen-gen/1", "skab", "true"): [30] * CHANNELS for s in SERIES}
    assert _counts(influxdb, influx_database) == expected
    # the stored values are the CSV's, point for point
    rows = _select(
        influxdb, influx_database, f'SELECT "Volume Flow RateRMS" FROM synthetic WHERE "series" = \'{SERIES[1]}\''
    )
    csv = pd.read_csv(out)
    assert [r["Volume Flow RateRMS"] for r in rows] == csv[csv["series"] == SERIES[1]][
        "Volume Flow RateRMS"
    ].tolist()

    again = _generate(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert stored in again.stdout
    assert _counts(influxdb, influx_database) == expected  # same points: nothing added


@pytest.mark.influxdb
def test_refused_points_are_reported_as_dead_letters_and_exit_1(
    influxdb: InfluxDB, influx_database: str, tmp_path: Path
) -> None:
    # An integer Accelerometer1RMS where the series go: InfluxDB refuses every float one ("field type conflict")
    influxdb.create_database(influx_database)
    influxdb.write(influx_database, "synthetic,series=other Accelerometer1RMS=1i 1767225600", precision="s")
    done = _generate(
        "--n", "2", "--length", "30", "--influx", influxdb.url, "--database", influx_database, cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().endswith(
        f"0 points -> {influxdb.url} database {influx_database} (synthetic=true, failure_mode=valve1), "
        "60 points dead-lettered"
    )
    refused = [line for line in done.stderr.splitlines() if line.startswith("dead-lettered:")]
    assert [line.split(" (storage_rejected): ")[0] for line in refused] == [
        f"dead-lettered: 30 points of {s} from 2026-01-01T00:00:00.000000Z" for s in SERIES
    ]
    assert all("field type conflict" in line for line in refused)
    assert _counts(influxdb, influx_database) == {}


def test_store_uses_the_gateway_settings_from_the_environment(tmp_path: Path) -> None:
    database = tmp_path / "gateway.sqlite"
    done = _generate(
        "--n", "2", "--length", "7", "--store", cwd=tmp_path, EDGEGEN_STORAGE__SQLITE_PATH=str(database)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"14 points -> sqlite {database} (synthetic=true, failure_mode=valve1)" in done.stdout
    with sqlite3.connect(database) as conn:
        counts = dict(conn.execute("SELECT tags, count(*) FROM derived GROUP BY tags").fetchall())
    assert counts == {f"{LABELS},series={s},synthetic=true": 7 * CHANNELS for s in SERIES}


def test_a_config_file_with_influx2_sends_the_schema_to_the_v2_endpoint(tmp_path: Path) -> None:
    async def go() -> tuple[list[Request], int, str, str]:
        async with ScriptedHttpServer([Reply(204)]) as server:
            config = tmp_path / "gateway.toml"
            config.write_text(
                f'[storage]\nkind = "influx2"\ninflux_url = "{server.url}"\norg = "acme"\nbucket = "plant"\n'
                'token = "tok-123"\n'
            )
            proc = await asyncio.create_subprocess_exec(
                *GENERATE, "--n", "2", "--length", "5", "--store", "--config", str(config),
                cwd=tmp_path, env=_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode is not None
            return server.requests, proc.returncode, stdout.decode(), stderr.decode()

    requests, returncode, stdout, stderr = asyncio.run(go())
    assert returncode == 0, stdout + stderr
    [request] = requests
    assert (request.method, request.path) == ("POST", "/api/v2/write")
    assert request.query == {"org": "acme", "bucket": "plant", "precision": "us"}
    assert request.headers["Authorization"] == "Token tok-123"
    points = [re.split(r"(?<!\\) ", line) for line in request.body.decode().split("\n")]  # unescaped spaces
    start_us = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, the default --start
    assert [(head, int(ts)) for head, _, ts in points] == [
        (f"synthetic,{LABELS},series={s},synthetic=true", start_us + k * 1_000_000)
        for s in SERIES
        for k in range(5)
    ]
    assert [len(re.split(r"(?<!\\),", fields)) for _, fields, _ in points] == [CHANNELS] * 10
    assert "10 points -> " in stdout and " bucket plant (synthetic=true, failure_mode=valve1)" in stdout


def test_config_without_store_is_a_usage_error(tmp_path: Path) -> None:
    done = _generate("--config", str(tmp_path / "gateway.toml"), cwd=tmp_path)
    assert done.returncode == 2
    assert "add --store" in done.stderr
