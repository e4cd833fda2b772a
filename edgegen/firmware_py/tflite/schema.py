# The parts of TensorFlow Lite's schema (tensorflow/lite/schema/schema.fbs) the interpreter reads: field
# numbers, enum values, and a parse of the model into plain Tensor and Op objects.
from ..errors import ModelError
from ..tflite.flatbuf import root

# Tensor types.
FLOAT32 = 0
INT32 = 2
INT64 = 4
INT8 = 9
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 17: "int4"}
TYPE_SIZES = {0: 4, 2: 4, 4: 8, 9: 1}

# Builtin operators the interpreter runs, with the highest version it understands (the converter raises an op's
# version when it starts using a feature the older kernels lack; types are checked separately at prepare).
ADD = 0
AVERAGE_POOL_2D = 1
CONCATENATION = 2
CONV_2D = 3
DEPTHWISE_CONV_2D = 4
DEQUANTIZE = 6
FULLY_CONNECTED = 9
LOGISTIC = 14
MAX_POOL_2D = 17
MUL = 18
RELU = 19
RELU6 = 21
RESHAPE = 22
SOFTMAX = 25
TANH = 28
MEAN = 40
SQUEEZE = 43
EXPAND_DIMS = 70
QUANTIZE = 114

OP_NAMES = {
    ADD: "ADD",
    AVERAGE_POOL_2D: "AVERAGE_POOL_2D",
    CONCATENATION: "CONCATENATION",
    CONV_2D: "CONV_2D",
    DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D",
    DEQUANTIZE: "DEQUANTIZE",
    FULLY_CONNECTED: "FULLY_CONNECTED",
    LOGISTIC: "LOGISTIC",
    MAX_POOL_2D: "MAX_POOL_2D",
    MUL: "MUL",
    RELU: "RELU",
    RELU6: "RELU6",
    RESHAPE: "RESHAPE",
    SOFTMAX: "SOFTMAX",
    TANH: "TANH",
    MEAN: "MEAN",
    SQUEEZE: "SQUEEZE",
    EXPAND_DIMS: "EXPAND_DIMS",
    QUANTIZE: "QUANTIZE",
    # Common ones we do not run, so a refusal names them.
    34: "PAD",
    41: "SUB",
    45: "STRIDED_SLICE",
    47: "EXP",
    49: "SPLIT",
    53: "CAST",
    55: "MAXIMUM",
    56: "ARG_MAX",
    69: "TILE",
    77: "SHAPE",
    83: "PACK",
    98: "LEAKY_RELU",
    117: "HARD_SWISH",
    38: "SPACE_TO_BATCH_ND",
    37: "BATCH_TO_SPACE_ND",
    39: "TRANSPOSE",
    44: "UNIDIRECTIONAL_SEQUENCE_LSTM",
}

MAX_VERSION = {
    ADD: 5,
    AVERAGE_POOL_2D: 3,
    CONCATENATION: 4,
    CONV_2D: 8,
    DEPTHWISE_CONV_2D: 7,
    DEQUANTIZE: 6,
    FULLY_CONNECTED: 13,
    LOGISTIC: 3,
    MAX_POOL_2D: 3,
    MUL: 7,
    RELU: 3,
    RELU6: 3,
    RESHAPE: 2,
    SOFTMAX: 3,
    TANH: 3,
    MEAN: 3,
    SQUEEZE: 2,
    EXPAND_DIMS: 2,
    QUANTIZE: 3,
}

# Fused activations and padding.
ACT_NONE = 0
ACT_RELU = 1
ACT_RELU_N1_TO_1 = 2
ACT_RELU6 = 3
PADDING_SAME = 0
PADDING_VALID = 1

SUPPORTED_FILE_VERSION = 3


def op_name(code):
    return OP_NAMES.get(code, "builtin op %d" % code)


class Tensor:
    def __init__(self, index, name, shape, dtype, data, scales, zero_points, qdim):
        self.index = index
        self.name = name
        self.shape = shape  # tuple of ints
        self.dtype = dtype
        self.data = data  # memoryview of the constant's bytes, or None for activations
        self.scales = scales  # float32 bit patterns (ints): exact, whatever the board's float precision
        self.zero_points = zero_points
        self.qdim = qdim
        size = 1
        for d in shape:
            size *= d
        self.size = size
        self.nbytes = size * TYPE_SIZES.get(dtype, 0)
        self.view = None  # set by the arena planner for activations

    @property
    def scale(self):
        return self.scales[0] if self.scales else 0

    @property
    def zero_point(self):
        return self.zero_points[0] if self.zero_points else 0

    def describe(self):
        return "tensor %d %r %s%s" % (
            self.index,
            self.name,
            TYPE_NAMES.get(self.dtype, str(self.dtype)),
            self.shape,
        )


class Op:
    def __init__(self, index, code, version, inputs, outputs, options):
        self.index = index
        self.code = code
        self.version = version
        self.inputs = inputs
        self.outputs = outputs
        self.options = options  # a flatbuf.Table, or None

    @property
    def name(self):
        return op_name(self.code)


class Graph:
    def __init__(self, tensors, ops, inputs, outputs):
        self.tensors = tensors
        self.ops = ops
        self.inputs = inputs
        self.outputs = outputs


def parse(buf, check_ops=True):
    """Read a .tflite file's first subgraph; refuse anything the interpreter cannot run, naming it.
    check_ops=False reads any model (the host describes gateway models with it)."""
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise ModelError("not a TensorFlow Lite model (no TFL3 identifier)")
    model = root(buf)
    version = model.scalar(0, "I")
    if version != SUPPORTED_FILE_VERSION:
        raise ModelError("schema version %d, expected %d" % (version, SUPPORTED_FILE_VERSION))
    codes = []
    for oc in model.tables(1):
        deprecated = oc.scalar(0, "b")
        builtin = oc.scalar(3, "i")
        code = max(deprecated, builtin)
        if check_ops and oc.has(1) and oc.string(1):
            raise ModelError("custom op %r is not supported" % oc.string(1))
        codes.append((code, oc.scalar(2, "i", 1)))
    subgraphs = model.tables(2)
    if len(subgraphs) != 1:
        raise ModelError("%d subgraphs; only single-subgraph models are supported" % len(subgraphs))
    buffers = model.tables(4)
    g = subgraphs[0]
    tensors = []
    for i, t in enumerate(g.tables(0)):
        shape = tuple(t.scalars(0, "i"))
        dtype = t.scalar(1, "b")
        data = None
        buffer_index = t.scalar(2, "I")
        if buffer_index and buffer_index < len(buffers):
            b = buffers[buffer_index]
            if b.has(1):
                raise ModelError("tensor %d uses an external buffer (models over 2 GB are not supported)" % i)
            data = b.bytes_view(0)
        q = t.table(4)
        scales = q.scalars(2, "I") if q is not None else []
        zero_points = q.scalars(3, "q") if q is not None else []
        qdim = q.scalar(6, "i") if q is not None else 0
        if t.table(6) is not None:
            raise ModelError("tensor %d is sparse; sparse tensors are not supported" % i)
        tensors.append(Tensor(i, t.string(3), shape, dtype, data, scales, zero_points, qdim))
    ops = []
    for i, o in enumerate(g.tables(3)):
        code, version = codes[o.scalar(0, "I")]
        if check_ops and code not in MAX_VERSION:
            raise ModelError("op %d: %s is not supported by this interpreter" % (i, op_name(code)))
        if check_ops and version > MAX_VERSION[code]:
            raise ModelError(
                "op %d: %s version %d is newer than supported (%d)"
                % (i, op_name(code), version, MAX_VERSION[code])
            )
        ops.append(Op(i, code, version, o.scalars(1, "i"), o.scalars(2, "i"), o.table(4)))
    return Graph(tensors, ops, g.scalars(1, "i"), g.scalars(2, "i"))
