"""The pure-MicroPython int8 interpreter against tflite-micro, the reference: every op, 1,000 random inputs per
model under the real MicroPython unix port, within 1 LSB (the share that is bit-exact is reported)."""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np
import pytest

from edgegen.firmware_py.errors import ModelError
from edgegen.firmware_py.tflite import schema as fw_schema
from edgegen.firmware_py.tflite.interpreter import Interpreter
from edgegen.models import shipped
from tests.support import contract
from tests.support.tflite_compare import MODELS, lsb_diff, random_inputs, reference, run_firmware

pytestmark = pytest.mark.micropython

OP_MODELS = {
    "fc_relu": {"FULLY_CONNECTED"},
    "conv_pool": {"CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"},
    "depthwise": {"DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "LOGISTIC"},
    "elementwise": {"FULLY_CONNECTED", "RESHAPE", "ADD", "TANH", "MUL"},
    "dilated": {"RELU6", "CONV_2D", "RESHAPE"},
    "conv1d": {"RESHAPE", "CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED"},
    "reshapes": {"RESHAPE", "FULLY_CONNECTED", "MEAN"},
    "float_io": {"QUANTIZE", "FULLY_CONNECTED", "LOGISTIC", "DEQUANTIZE"},
    "squeeze_expand": {"RESHAPE", "FULLY_CONNECTED", "MEAN", "SQUEEZE", "EXPAND_DIMS"},
    "relu_requantize": {"RELU", "CONV_2D", "RESHAPE", "QUANTIZE"},
    "fc256": {"FULLY_CONNECTED"},
    "concat": {"RESHAPE", "CONV_2D", "FULLY_CONNECTED", "MEAN", "CONCATENATION"},
}
N_INPUTS = 1000
ARTIFACTS = shipped.artifacts()
SHIPPED = [  # the node models shipped in edgegen/models/artifacts (their manifests say which are for nodes)
    p.parent / contract.any_manifest(p).file.name
    for p in sorted(ARTIFACTS.rglob("*.manifest.json"))
    if contract.is_node(contract.any_manifest(p))
]


def _ops(model: bytes) -> set[str]:
    graph = fw_schema.parse(model)
    return {op.name for op in graph.ops}


def test_the_test_models_cover_every_supported_op() -> None:
    covered = set().union(*OP_MODELS.values())
    assert covered == {fw_schema.op_name(code) for code in fw_schema.MAX_VERSION}
    for name, expected in OP_MODELS.items():
        assert _ops((MODELS / f"{name}.tflite").read_bytes()) == expected, name


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", [MODELS / f"{name}.tflite" for name in sorted(OP_MODELS)] + SHIPPED, ids=lambda p: p.stem
)
def test_micropython_viper_matches_tflite_micro(path: Path, tmp_path: Path) -> None:
    name = path.stem
    model = path.read_bytes()
    ref = reference(model, random_inputs(model, N_INPUTS, seed=11))
    ours, info = run_firmware(path, ref.inputs, ref.outputs.dtype, "viper", tmp_path)
    assert (info["kernels"], info["count"]) == ("viper", N_INPUTS)
    diff = lsb_diff(ours, ref)
    assert diff.max() <= 1.0, f"{name}: {int((diff > 1).sum())} inputs differ by more than 1 LSB"
    exact = float(np.mean(diff == 0))
    print(f"{name}: bit-exact on {exact:.1%} of {N_INPUTS} inputs")
    assert exact >= 0.99


@pytest.mark.parametrize("name", ["conv_pool", "depthwise", "elementwise", "float_io"])
def test_micropython_plain_python_kernels_give_the_viper_results(name: str, tmp_path: Path) -> None:
    path = MODELS / f"{name}.tflite"
    model = path.read_bytes()
    inputs = random_inputs(model, 40, seed=5)
    ref = reference(model, inputs)
    viper, _ = run_firmware(path, inputs, ref.outputs.dtype, "viper", tmp_path)
    plain, info = run_firmware(path, inputs, ref.outputs.dtype, "python", tmp_path)
    assert info["kernels"] == "python"
    assert plain.tobytes() == viper.tobytes()


@pytest.mark.parametrize("name", sorted(OP_MODELS))
def test_cpython_runs_the_same_interpreter(name: str) -> None:
    model = (MODELS / f"{name}.tflite").read_bytes()
    ref = reference(model, random_inputs(model, 25, seed=3))
    interp = Interpreter(model, use_viper=False)
    code = "f" if ref.inputs.dtype == np.float32 else "b"
    out = array("f" if ref.outputs.dtype == np.float32 else "b", bytes(4 * interp.output_size))[
        : interp.output_size
    ]
    results = []
    for x in ref.inputs:
        inp = array(code, x.tobytes())
        before = inp.tobytes()
        interp.run(inp, out)
        assert inp.tobytes() == before  # inputs are never mutated
        results.append(np.frombuffer(out, dtype=ref.outputs.dtype).copy())
    assert lsb_diff(np.array(results), ref).max() <= 1.0


def _edited(name: str, edit: object) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf((MODELS / f"{name}.tflite").read_bytes(), 0)
    edit(model, schema)  # type: ignore[operator]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_an_unsupported_op_is_refused_at_load_naming_it() -> None:
    def to_sub(model: object, schema: object) -> None:
        model.operatorCodes[0].builtinCode = 41  # type: ignore[attr-defined]
        model.operatorCodes[0].deprecatedBuiltinCode = 41  # type: ignore[attr-defined]

    with pytest.raises(ModelError, match=r"^op 0: SUB is not supported by this interpreter$"):
        Interpreter(_edited("fc_relu", to_sub))


def test_a_newer_op_version_is_refused_at_load_naming_it() -> None:
    def bump(model: object, schema: object) -> None:
        model.operatorCodes[0].version = 99  # type: ignore[attr-defined]

    with pytest.raises(ModelError, match=r"^op 0: FULLY_CONNECTED version 99 is newer than supported \(13\)$"):
        Interpreter(_edited("fc_relu", bump))


def test_float_weights_are_refused_naming_the_op_and_tensor_type() -> None:
    def float_weights(model: object, schema: object) -> None:
        graph = model.subgraphs[0]  # type: ignore[attr-defined]
        weights = graph.tensors[graph.operators[0].inputs[1]]
        weights.type = 0  # float32

    with pytest.raises(ModelError, match=r"^op 0 FULLY_CONNECTED: filter must be int8, got float32$"):
        Interpreter(_edited("fc_relu", float_weights))


def test_garbage_is_not_a_model() -> None:
    with pytest.raises(ModelError, match="not a TensorFlow Lite model"):
        Interpreter(b"\x00" * 64)


def _single_op(code: int, in_scale: float, in_zp: int, out_scale: float, out_zp: int, n: int) -> bytes:
    """A model of one op on an int8 [1, n] tensor, built from the schema (no converter involved)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(name: str, scale: float, zp: int) -> object:
        t = schema.TensorT()
        t.shape = np.array([1, n], dtype=np.int32)
        t.type = schema.TensorType.INT8
        t.buffer = 0
        t.name = name
        q = schema.QuantizationParametersT()
        q.scale = [scale]
        q.zeroPoint = [zp]
        t.quantization = q
        return t

    model = schema.ModelT()
    model.version = 3
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = code
    opcode.deprecatedBuiltinCode = code
    opcode.version = 2
    model.operatorCodes = [opcode]
    model.buffers = [schema.BufferT()]
    graph = schema.SubGraphT()
    graph.tensors = [tensor("in", in_scale, in_zp), tensor("out", out_scale, out_zp)]
    graph.inputs = np.array([0], dtype=np.int32)
    graph.outputs = np.array([1], dtype=np.int32)
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = np.array([0], dtype=np.int32)
    op.outputs = np.array([1], dtype=np.int32)
    if code == schema.BuiltinOperator.SOFTMAX:
        op.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
        op.builtinOptions = schema.SoftmaxOptionsT()
        op.builtinOptions.beta = 1.0
    graph.operators = [op]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("in_scale", [0.004, 0.02, 0.0625, 0.1, 0.35])
@pytest.mark.parametrize(
    ("code", "out_scale", "out_zp"), [(14, 1 / 256, -128), (28, 1 / 128, 0)], ids=["LOGISTIC", "TANH"]
)
def test_tabled_activations_on_every_int8_input(code: int, out_scale: float, out_zp: int, in_scale: float) -> None:
    """LOGISTIC and TANH are tables computed from the real function; TFLM uses gemmlowp fixed point."""
    model = _single_op(code, in_scale, 3, out_scale, out_zp, 256)
    every = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)
    ref = reference(model, every)
    interp = Interpreter(model, use_viper=False)
    out = array("b", bytes(256))
    interp.run(array("b", every.tobytes()), out)
    diff = lsb_diff(np.frombuffer(out, dtype=np.int8).reshape(1, -1), ref)
    assert diff.max() <= 1.0
    mismatches = int(np.sum(np.frombuffer(out, dtype=np.int8) != ref.outputs.reshape(-1)))
    print(f"op {code} input scale {in_scale}: {256 - mismatches}/256 bit-exact")
    assert mismatches <= 3


@pytest.mark.parametrize("in_scale", [0.01, 0.05, 0.2])
def test_softmax_rows_within_one_lsb(in_scale: float) -> None:
    model = _single_op(25, in_scale, -7, 1 / 256, -128, 16)
    rows = np.random.default_rng(2).integers(-128, 128, size=(2000, 1, 16), dtype=np.int8)
    ref = reference(model, rows)
    interp = Interpreter(model, use_viper=False)
    out = array("b", bytes(16))
    ours = []
    for row in rows:
        interp.run(array("b", row.tobytes()), out)
        ours.append(np.frombuffer(out, dtype=np.int8).copy())
    diff = lsb_diff(np.array(ours), ref)
    assert diff.max() <= 1.0
    print(f"softmax input scale {in_scale}: {np.mean(diff == 0):.1%} of rows bit-exact")
    assert np.mean(diff == 0) >= 0.95
