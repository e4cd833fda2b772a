"""Build the int8 test models that exercise every op of the firmware interpreter (needs the `train` extra).

    .venv/bin/python tests/firmware/models/build_op_models.py

Writes one .tflite per model next to this file. Weights are random but seeded, and calibration uses seeded random
data, so a rebuild on the same TensorFlow version gives the same files. The models are committed: the tests only
need tflite-micro (the reference) and MicroPython, not TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema

HERE = Path(__file__).parent
keras = tf.keras
Model = Any  # a keras.Model (TensorFlow ships no type information)
layers = keras.layers


def fc_relu() -> Model:
    x = keras.Input(batch_size=1, shape=(16,))
    h = layers.Dense(12, activation="relu")(x)
    h = layers.Dense(8, activation="relu6")(h)
    return keras.Model(x, layers.Dense(4)(h))


def conv_pool() -> Model:
    x = keras.Input(batch_size=1, shape=(16, 16, 3))
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Conv2D(6, 3, strides=2, padding="valid", activation="relu6")(h)
    h = layers.AveragePooling2D(2, padding="same")(h)
    h = layers.Conv2D(5, (2, 3), strides=(1, 2), padding="same")(h)
    h = layers.Flatten()(h)
    return keras.Model(x, layers.Softmax()(layers.Dense(3)(h)))


def depthwise() -> Model:
    x = keras.Input(batch_size=1, shape=(12, 12, 4))
    h = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
    h = layers.ReLU()(h)
    h = layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu")(h)
    h = layers.DepthwiseConv2D((3, 2), strides=(1, 2), depth_multiplier=3, padding="same")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, layers.Dense(2, activation="sigmoid")(h))


def elementwise() -> Model:
    x = keras.Input(batch_size=1, shape=(10,))
    x = layers.ReLU()(x)  # on the input: nothing to fuse into, so a RELU op of its own
    a = layers.Dense(8)(x)
    b = layers.Dense(8)(x)
    s = layers.Add()([a, b])
    m = layers.Multiply()([s, layers.Dense(8, activation="tanh")(x)])
    r = layers.ReLU()(m)
    six = layers.ReLU(max_value=6.0)(layers.Add()([r, a]))
    return keras.Model(x, layers.Activation("tanh")(six))


def dilated() -> Model:
    x = keras.Input(batch_size=1, shape=(10, 10, 2))
    h = layers.Conv2D(3, 3, dilation_rate=2, padding="valid", activation="relu")(layers.ReLU(max_value=6.0)(x))
    return keras.Model(x, layers.Flatten()(h))


def conv1d() -> Model:
    """The shape of a node encoder: a window of 64 samples x 3 channels -> 1-D convolutions -> a small vector."""
    x = keras.Input(batch_size=1, shape=(64, 3))
    h = layers.Conv1D(8, 5, strides=2, padding="same", activation="relu")(x)
    h = layers.Conv1D(8, 3, padding="valid", activation="relu")(h)
    h = layers.MaxPooling1D(2)(h)
    h = layers.GlobalAveragePooling1D()(h)
    return keras.Model(x, layers.Dense(6)(h))


def reshapes() -> Model:
    x = keras.Input(batch_size=1, shape=(4, 6))
    h = layers.Reshape((24,))(x)
    h = layers.Dense(12)(h)
    h = layers.Reshape((3, 4))(h)
    h = layers.Lambda(lambda t: tf.expand_dims(t, axis=2))(h)
    h = layers.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True))(h)
    return keras.Model(x, layers.Lambda(lambda t: tf.squeeze(t, axis=[1, 2]))(h))


def fc256() -> Model:
    """The 256 -> 32 fully-connected layer docs/firmware.md times (8,192 MACs)."""
    x = keras.Input(batch_size=1, shape=(256,))
    return keras.Model(x, layers.Dense(32)(x))


def concat() -> Model:
    """A window, its learned summary and its channel means side by side: the node encoder's output shape."""
    x = keras.Input(batch_size=1, shape=(16, 4))
    h = layers.Conv1D(6, 3, padding="same", activation="relu")(x)
    learned = layers.Dense(5)(layers.Flatten()(h))
    means = layers.GlobalAveragePooling1D()(x)
    return keras.Model(x, layers.Concatenate()([learned, means]))


def float_io() -> Model:
    x = keras.Input(batch_size=1, shape=(8,))
    return keras.Model(x, layers.Dense(4, activation="sigmoid")(layers.Dense(6, activation="relu")(x)))


MODELS: dict[str, tuple[Callable[[], Model], bool]] = {
    "fc_relu": (fc_relu, False),
    "conv_pool": (conv_pool, False),
    "depthwise": (depthwise, False),
    "elementwise": (elementwise, False),
    "dilated": (dilated, False),
    "conv1d": (conv1d, False),
    "reshapes": (reshapes, False),
    "float_io": (float_io, True),  # float32 in and out: QUANTIZE and DEQUANTIZE at the edges
    "fc256": (fc256, False),
    "concat": (concat, False),
}


def convert(model: Model, float_io: bool, seed: int) -> bytes:
    shape = (1, *model.input_shape[1:])
    rng = np.random.default_rng(seed)

    def representative() -> object:
        for _ in range(64):
            yield [rng.normal(0, 1, size=shape).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


# -- hand edits: ops the converter never emits for these layers, made by editing a converted model ----------


def _load(name: str) -> tuple[Any, Any]:
    model = schema.ModelT.InitFromPackedBuf((HERE / f"{name}.tflite").read_bytes(), 0)
    return model, model.subgraphs[0]


def _save(model: Any, name: str) -> int:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    data = bytes(builder.Output())
    (HERE / f"{name}.tflite").write_bytes(data)
    return len(data)


def _opcode(model: Any, code: int) -> int:
    entry = schema.OperatorCodeT()
    entry.builtinCode = code
    entry.deprecatedBuiltinCode = min(code, 127)
    entry.version = 1
    model.operatorCodes.append(entry)
    return len(model.operatorCodes) - 1


def _tensor_like(graph: Any, like: int, name: str, shape: list[int], scale: float, zp: int) -> int:
    src = graph.tensors[like]
    t = schema.TensorT()
    t.shape = np.array(shape, dtype=np.int32)
    t.type = src.type
    t.buffer = 0
    t.name = name
    q = schema.QuantizationParametersT()
    q.scale = [scale]
    q.zeroPoint = [zp]
    t.quantization = q
    graph.tensors.append(t)
    return len(graph.tensors) - 1


def _op(
    model: schema.ModelT,
    graph: schema.SubGraphT,
    code: int,
    inputs: list[int],
    outputs: list[int],
    options_type: int = 0,
    options: object = None,
) -> None:
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, code)
    op.inputs = np.array(inputs, dtype=np.int32)
    op.outputs = np.array(outputs, dtype=np.int32)
    op.builtinOptionsType = options_type
    op.builtinOptions = options
    graph.operators.append(op)


def squeeze_expand() -> int:
    """reshapes.tflite with its last RESHAPE made a SQUEEZE, then an EXPAND_DIMS appended."""
    model, g = _load("reshapes")
    last = g.operators[-1]
    squeeze = schema.SqueezeOptionsT()
    squeeze.squeezeDims = [1, 2]
    last.opcodeIndex = _opcode(model, schema.BuiltinOperator.SQUEEZE)
    last.inputs = last.inputs[:1]
    last.builtinOptionsType = schema.BuiltinOptions.SqueezeOptions
    last.builtinOptions = squeeze
    out = int(g.outputs[0])
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.array([1], dtype="<i4").tobytes(), dtype=np.uint8)
    model.buffers.append(buffer)
    axis = schema.TensorT()
    axis.shape = np.array([1], dtype=np.int32)
    axis.type = schema.TensorType.INT32
    axis.buffer = len(model.buffers) - 1
    axis.name = "axis"
    g.tensors.append(axis)
    src = g.tensors[out].quantization
    expanded = _tensor_like(g, out, "expanded", [1, 1, 4], src.scale[0], int(src.zeroPoint[0]))
    _op(
        model,
        g,
        schema.BuiltinOperator.EXPAND_DIMS,
        [out, len(g.tensors) - 2],
        [expanded],
        schema.BuiltinOptions.ExpandDimsOptions,
        schema.ExpandDimsOptionsT(),
    )
    g.outputs = np.array([expanded], dtype=np.int32)
    return _save(model, "squeeze_expand")


def relu_requantize() -> int:
    """dilated.tflite with RELU6 made RELU, then a QUANTIZE to another int8 scale appended."""
    model, g = _load("dilated")
    g.operators[0].opcodeIndex = _opcode(model, schema.BuiltinOperator.RELU)
    out = int(g.outputs[0])
    src = g.tensors[out]
    requantized = _tensor_like(
        g,
        out,
        "requantized",
        src.shape.tolist(),
        src.quantization.scale[0] * 1.7,
        int(src.quantization.zeroPoint[0]) + 5,
    )
    _op(model, g, schema.BuiltinOperator.QUANTIZE, [out], [requantized])
    g.outputs = np.array([requantized], dtype=np.int32)
    return _save(model, "relu_requantize")


def main() -> None:
    for i, (name, (build, float_in)) in enumerate(MODELS.items()):
        keras.utils.set_random_seed(1000 + i)
        model = build()
        data = convert(model, float_in, seed=2000 + i)
        (HERE / f"{name}.tflite").write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    print(f"squeeze_expand: {squeeze_expand()} bytes")
    print(f"relu_requantize: {relu_requantize()} bytes")


if __name__ == "__main__":
    main()
