"""Training (needs the `train` extra: tensorflow-cpu). Import tensorflow only through require_tensorflow()."""

from __future__ import annotations

from typing import Any

from edgegen.models.errors import TrainingUnavailable


def require_tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError:
        raise TrainingUnavailable("training needs TensorFlow: pip install 'edgegen[train]'") from None
    return tf
