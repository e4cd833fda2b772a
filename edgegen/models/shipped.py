"""The artifacts that ship inside the package, found with importlib.resources (an installed wheel or a checkout).

The interpreters and the signature checks read real files, so the directory is handed out as a path: for a
package on disk that is where it lies; a zipped package is unpacked once for the life of the process.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

_unpacked = ExitStack()
atexit.register(_unpacked.close)


@cache
def artifacts() -> Path:
    """The directory of shipped artifacts: ``skab/`` (node models), ``generative/``, ``edgegen-dev.pub``."""
    return _unpacked.enter_context(as_file(files("edgegen.models") / "artifacts"))


def node_models() -> Path:
    """The shipped node models (trained on SKAB), signed with the development key."""
    return artifacts() / "skab"


def generative_models() -> Path:
    """The shipped generative models: one NAME.tflite + NAME.json pair per data set."""
    return artifacts() / "generative"


def dev_public_key() -> Path:
    """The public half of the development key the shipped artifacts are signed with."""
    return artifacts() / "edgegen-dev.pub"
