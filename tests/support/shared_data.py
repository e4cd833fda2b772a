"""What the ``data`` and ``train`` markers check (tests/conftest.py): the shared data sets beside the checkout
(../shared/data), and whether TensorFlow (the train extra) is importable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # tests/support/ -> the checkout's parent
HAVE_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
REQUIRE_TRAIN_ENV = "TESTS_REQUIRE_TRAIN"  # the test script sets it: a missing TensorFlow fails, not skips
