"""Keras -> .tflite: float32, or full-integer int8 (int8 in and out) from a representative data set."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from edgegen.models.train import require_tensorflow

tf = require_tensorflow()


def to_tflite(model: Any, representative: npt.NDArray[np.float32] | None) -> bytes:
    """int8 when ``representative`` samples are given (calibration, batch 1 each), else float32."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:

        def samples() -> Iterator[list[npt.NDArray[np.float32]]]:
            for x in representative:
                yield [x[None, ...].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its SavedModel export to stdout
        return bytes(converter.convert())
