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


def generative_model(model: str | Path) -> Path:
    """A generative model's path without suffix: ``model`` itself when it names files (``DIR/NAME``, or ``NAME``
    beside the working directory's ``NAME.tflite``), else the shipped model of that name (``skab``, ``tep``,
    ``stock``). Whether the files exist and verify is for the loader to say."""
    path = Path(model)
    if len(path.parts) != 1 or path.with_suffix(".tflite").exists():
        return path
    candidate = generative_models() / path.name
    return candidate if candidate.with_suffix(".tflite").exists() else path


def generative_names() -> list[str]:
    """The shipped generative models' names."""
    return sorted(p.stem for p in generative_models().glob("*.tflite"))
