# Run a .tflite int8 model in pure MicroPython (or CPython).
#
#   model = Interpreter(open("encoder.tflite", "rb").read())
#   inp = array("b", bytes(model.input_size)); out = array("b", bytes(model.output_size))
#   model.run(inp, out)          # per window: no allocation in the kernels
#
# At load: the flatbuffer is parsed in place (weights stay in the model buffer), every op is prepared (types,
# shapes and requantization parameters checked and computed once), and one arena is planned for all activations:
# tensors whose lifetimes do not overlap share bytes. The caller owns the input and output buffers.
from array import array

from ..bytecopy import copy_bytes
from ..errors import ModelError
from ..tflite import ops, schema

_ALIGN = 4


def _kernels(use_viper):
    if use_viper is not False:
        try:
            from ..tflite import kernels_viper

            return kernels_viper, "viper"
        except (ImportError, SyntaxError, ValueError):
            if use_viper:
                raise ModelError("viper kernels requested but this port has no native emitter") from None
    from ..tflite import kernels

    return kernels, "python"


class Interpreter:
    def __init__(self, model, use_viper=None):
        self.model = model  # bytes or bytearray of the .tflite file; kept: weights are read in place
        self.graph = graph = schema.parse(model)
        kernels, self.kernels = _kernels(use_viper)
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise ModelError(
                "models with one input and one output are supported, got %d and %d"
                % (len(graph.inputs), len(graph.outputs))
            )
        self.steps = [ops.build(op, graph, kernels) for op in graph.ops]
        self.arena_bytes = self._plan()
        self.input = graph.tensors[graph.inputs[0]]
        self.output = graph.tensors[graph.outputs[0]]
        acc_size = 1
        for op in graph.ops:
            for t in op.outputs:
                acc_size = max(acc_size, graph.tensors[t].size)
        self.acc = array("i", [0] * acc_size)

    @property
    def input_size(self):
        return self.input.size

    @property
    def output_size(self):
        return self.output.size

    def _plan(self):
        """Place every activation in one arena, reusing bytes across non-overlapping lifetimes (greedy by size)."""
        g = self.graph
        first = {}
        last = {}
        for t in g.inputs:
            first[t] = -1
        for i, op in enumerate(g.ops):
            for t in op.inputs + op.outputs:
                if t < 0 or g.tensors[t].data is not None:
                    continue
                if t not in first:
                    first[t] = i
                last[t] = i
        for t in g.outputs:
            last[t] = len(g.ops)
        int8_tensors = []
        for t in first:
            tensor = g.tensors[t]
            if tensor.dtype == schema.FLOAT32:
                tensor.view = array("f", [0.0] * tensor.size)  # model edges only: their own float storage
                tensor.arena = tensor.view
                tensor.offset = 0
            elif tensor.dtype == schema.INT8:
                int8_tensors.append(t)
            else:
                raise ModelError("%s: activations must be int8 (or float32 at the edges)" % tensor.describe())
        int8_tensors.sort(key=lambda t: -g.tensors[t].nbytes)
        placed = []  # (offset, size, first, last)
        total = 0
        for t in int8_tensors:
            size = g.tensors[t].nbytes
            offset = 0
            moved = True
            while moved:
                moved = False
                for p_off, p_size, p_first, p_last in placed:
                    if (
                        p_first <= last[t]
                        and first[t] <= p_last
                        and offset < p_off + p_size
                        and p_off < offset + size
                    ):
                        offset = (p_off + p_size + _ALIGN - 1) // _ALIGN * _ALIGN
                        moved = True
            placed.append((offset, size, first[t], last[t]))
            total = max(total, offset + size)
        self.arena = bytearray(total)
        view = memoryview(self.arena)
        for (offset, size, _, _), t in zip(placed, int8_tensors):
            tensor = g.tensors[t]
            tensor.view = view[offset : offset + size]
            tensor.arena = self.arena
            tensor.offset = offset
        return total

    def run(self, inp, out):
        """Run one inference: inp and out are caller-owned buffers of input_size and output_size values
        (array("b") for int8 models, array("f") for float32 edges)."""
        t_in = self.input
        if len(inp) != t_in.size or len(out) != self.output.size:
            raise ValueError("input or output buffer size")
        copy_bytes(t_in.arena, t_in.offset, inp, t_in.nbytes)
        acc = self.acc
        for step in self.steps:
            step.run(acc)
        copy_bytes(out, 0, self.output.view, self.output.nbytes)
