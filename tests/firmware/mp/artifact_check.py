# Runs under MicroPython: firmware_py.artifact.check on artifact files, printing "ok" or the refusal.
# usage: artifact_check.py MANIFEST SIG MODEL TRUSTED_KEYS_JSON BOARD_CLASS INSTALLED_SEQUENCE
import json
import sys

from firmware_py.artifact import check
from firmware_py.errors import ModelError


def read(path):
    with open(path, "rb") as f:
        return f.read()


try:
    manifest = check(
        read(sys.argv[1]),
        read(sys.argv[2]),
        json.loads(sys.argv[4]),
        read(sys.argv[3]),
        sys.argv[5],
        int(sys.argv[6]),
    )
    print("ok " + manifest["name"] + " " + str(manifest["sequence"]))
except ModelError as exc:
    print("refused: " + str(exc))
