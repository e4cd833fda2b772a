#!/usr/bin/env bash
# edgegen's test command (the README's second command; .ci/run calls it).
#
# On a fresh Debian machine: installs mosquitto, InfluxDB 1.x, openssl and python3-venv with apt when missing, creates
# .venv, installs the locked test environment (requirements/test.lock: the dev and train extras, tensorflow-cpu
# included: the tests train tiny models) and the project, then runs ruff, mypy, import-linter and pytest.
# EDGEGEN_DEPS=latest installs the newest versions the package's ranges admit instead (the scheduled run).
# The test session starts its own
# mosquitto and influxd on 127.0.0.1 (free ports, temporary directories) and stops them at the end
# (tests/support/servers.py); TESTS_REQUIRE_SERVERS=1 makes a missing server a failure instead of a skip, and
# TESTS_REQUIRE_TRAIN=1 does the same for a missing TensorFlow.
# Exits non-zero on any failure, including "no tests ran".
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || missing+=(influxdb)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]} with apt"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
fi
if [ "${EDGEGEN_DEPS:-locked}" = latest ]; then
    # the scheduled run: the newest releases the package's own ranges admit, so a break shows up before users see it
    echo "== installing edgegen[dev,train] at the newest versions its ranges admit (requirements/test.lock ignored)"
    .venv/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev,train]'
else
    echo "== installing the locked test environment (requirements/test.lock), then edgegen itself"
    .venv/bin/python -m pip install --quiet --require-hashes -r requirements/test.lock
    .venv/bin/python -m pip install --quiet --no-deps -e .
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== import-linter (the layers in pyproject.toml)"
.venv/bin/lint-imports
echo "== pytest"
export TESTS_REQUIRE_SERVERS=1 TESTS_REQUIRE_TRAIN=1
# the MicroPython unix port and tflite-micro have x86-64 wheels only: required there, skipped with the reason elsewhere
if [ "$(uname -m)" = x86_64 ]; then export TESTS_REQUIRE_NATIVE=1; fi
.venv/bin/python -m pytest "$@"
