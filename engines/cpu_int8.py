"""INT8 on ONNX Runtime's CPU: which integer path this CPU takes, and the Q/DQ form built for it.

A Q/DQ model for TensorRT (``toolkit calibrate --format qdq``) has signed, symmetric INT8
activations and weights (S8S8). On x86 CPUs without VNNI, ONNX Runtime multiplies 8-bit values
with ``VPMADDUBSW``, which adds each pair of u8 x s8 products into a saturating 16-bit integer:
S8S8 models can then lose most of their accuracy. The CPU engine therefore never runs the S8S8
form; :func:`cpu_form` rewrites it, from the same calibration (the same scales), into:

- ``u8s8``: unsigned activations (zero point 128: the same grid as the signed ones) and signed
  weights. x86 with VNNI (``avx512_vnni``, ``avx_vnni``: ``VPDPBUSD`` adds into 32 bits) and ARM
  (dot product ``asimddp`` or widening multiplies) never saturate.
- ``u8s8-reduce-range``: the same with 7-bit weights (|q| <= 64), for x86 without VNNI (and CPUs
  this module does not know): 255 * 64 * 2 = 32640 fits a 16-bit sum, so no pair saturates
  (ONNX Runtime's quantization docs: ``reduce_range``).

:func:`int8_path` is a pure function of ``/proc/cpuinfo``'s text, the machine name and, where
numpy exposes it, numpy's own run-time CPUID view (:func:`cpuid_features`). ONNX Runtime picks its
kernels by CPUID. On a real machine ``/proc/cpuinfo`` says the same; under user-mode emulation
(``qemu-x86_64 -cpu Haswell``, Intel SDE) it describes the host instead. When the two disagree on
a feature both know, CPUID is taken, and flags only ``/proc/cpuinfo`` knows (``avx_vnni``) are
dropped: the 7-bit form, safe on every CPU, rather than a guess.
"""
import platform

import numpy as np

from basics.errors import InputError
from basics.lazy import lazy_import

VNNI_FLAGS = ("avx512_vnni", "avx_vnni")
ARM_DOT_PRODUCT_FLAGS = ("asimddp",)
REDUCED_WEIGHT_MAX = 64  # 7-bit weights: 255 * 64 * 2 <= 32767
#: /proc/cpuinfo's x86 flag -> numpy's CPUID feature name, for the flags that choose the form
CPUID_NAMES = {"avx2": "AVX2", "avx512f": "AVX512F", "avx512bw": "AVX512BW",
               "avx512_vnni": "AVX512VNNI"}
_X86 = ("x86_64", "amd64", "i386", "i486", "i586", "i686", "x86")
_ARM = ("aarch64", "arm64", "armv8l", "armv8b")


class CpuInt8Path(object):
    """How this CPU runs INT8: ``arch`` (x86 / arm / other), ``instructions`` (what the integer
    kernels use), ``form`` (``u8s8`` or ``u8s8-reduce-range``) and ``reason`` (why that form)."""

    def __init__(self, arch, instructions, form, reason):
        self.arch = arch
        self.instructions = instructions
        self.form = form
        self.reason = reason

    @property
    def reduce_range(self):
        return self.form == "u8s8-reduce-range"

    def describe(self):
        return "{} ({}): {}, {}".format(self.arch, self.instructions, self.form, self.reason)

    def to_dict(self):
        return {"arch": self.arch, "instructions": self.instructions, "form": self.form,
                "reason": self.reason}


def cpu_flags(cpuinfo_text):
    """The feature flags of ``/proc/cpuinfo`` text (x86 ``flags``, ARM ``Features`` lines)."""
    flags = set()
    for line in (cpuinfo_text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def cpuid_features():
    """numpy's run-time CPUID view, ``{"AVX2": True, ...}``; ``{}`` where numpy does not expose
    it. (numpy >= 1.18 detects the CPU's features at import, as ONNX Runtime does: by CPUID and
    the OS's saved register state.)"""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            features = getattr(__import__(module, fromlist=["__cpu_features__"]),
                               "__cpu_features__", None)
        except ImportError:
            continue
        if isinstance(features, dict):
            return dict(features)
    return {}


def _x86_flags(flags, cpuid):
    """``(flags, note)``: the cpuinfo ``flags``, unless ``cpuid`` (:func:`cpuid_features`)
    contradicts them on a feature both know; then the CPUID-confirmed flags only, and a note."""
    known = [(flag, name) for flag, name in sorted(CPUID_NAMES.items()) if name in (cpuid or {})]
    wrong = [flag for flag, name in known if (flag in flags) != bool(cpuid[name])]
    if not wrong:
        return flags, ""
    return (set(flag for flag, name in known if cpuid[name]),
            "; /proc/cpuinfo disagrees with CPUID on {} (an emulated CPU?): CPUID taken".format(
                ", ".join(wrong)))


def int8_path(cpuinfo_text, machine, cpuid=None):
    """The :class:`CpuInt8Path` of a CPU with ``/proc/cpuinfo`` text ``cpuinfo_text``,
    ``platform.machine()`` ``machine`` and, on x86, CPUID features ``cpuid``
    (:func:`cpuid_features`; None or empty: ``/proc/cpuinfo`` alone)."""
    flags = cpu_flags(cpuinfo_text)
    arch = (machine or "").lower()
    if arch in _X86:
        flags, note = _x86_flags(flags, cpuid)
        vnni = [flag for flag in VNNI_FLAGS if flag in flags]
        if vnni:
            return CpuInt8Path("x86", "VNNI: " + ", ".join(vnni), "u8s8",
                               "VNNI adds u8 x s8 products in 32 bits: no saturation" + note)
        simd = "AVX-512" if "avx512bw" in flags else "AVX2" if "avx2" in flags else "SSE"
        return CpuInt8Path("x86", "{} without VNNI".format(simd), "u8s8-reduce-range",
                           "16-bit pair sums saturate with 8-bit weights; 7-bit weights do not"
                           + note)
    if arch in _ARM or arch.startswith("arm"):
        dot = [flag for flag in ARM_DOT_PRODUCT_FLAGS if flag in flags]
        return CpuInt8Path("arm", "dot product: asimddp" if dot else "no dot product (NEON "
                           "widening multiplies)", "u8s8",
                           "ARM's integer kernels add in 32 bits: no saturation")
    return CpuInt8Path(arch or "unknown", "unknown", "u8s8-reduce-range",
                       "an unknown CPU: 7-bit weights cannot saturate 16-bit sums")


def this_cpu_int8_path(cpuinfo_path="/proc/cpuinfo"):
    """:func:`int8_path` of the CPU this runs on (its ``/proc/cpuinfo`` and numpy's CPUID)."""
    try:
        with open(cpuinfo_path) as handle:
            text = handle.read()
    except (IOError, OSError):
        text = ""
    return int8_path(text, platform.machine(), cpuid_features())


class _Graph(object):
    """Index of a Q/DQ graph: initializers, producers and consumers of each tensor."""

    def __init__(self, model):
        self.model = model
        graph = model.graph
        self.constants = dict((init.name, init) for init in graph.initializer)
        self.producer = {}
        self.consumers = {}
        for node in graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def is_weight_q(self, node):
        return node.op_type == "QuantizeLinear" and node.input[0] in self.constants

    def is_weight_dq(self, node):
        if node.op_type != "DequantizeLinear":
            return False
        source = self.producer.get(node.input[0])
        return node.input[0] in self.constants or (source is not None and self.is_weight_q(source))


def _array(init):
    return lazy_import("onnx.numpy_helper", "rewriting Q/DQ models").to_array(init)


def _add_constant(model, name, value):
    numpy_helper = lazy_import("onnx.numpy_helper", "rewriting Q/DQ models")
    taken = set(init.name for init in model.graph.initializer)
    base, count = name, 0
    while name in taken:
        count += 1
        name = "{}_{}".format(base, count)
    model.graph.initializer.extend([numpy_helper.from_array(np.asarray(value), name)])
    return name


def _axis(node):
    for attribute in node.attribute:
        if attribute.name == "axis":
            return attribute.i
    return 1


def _per_channel_max(values, scale, axis):
    if np.ndim(scale) == 0 or np.size(scale) == 1:
        return np.max(np.abs(values))
    axis = axis % values.ndim
    other = tuple(i for i in range(values.ndim) if i != axis)
    return np.max(np.abs(values), axis=other) if other else np.abs(values)


def _fold_weight(model, graph, dq, reduce_range):
    """Replace the weight feeding DequantizeLinear ``dq`` (a float initializer behind a
    QuantizeLinear, or int8 already) with int8 values (7-bit when ``reduce_range``)."""
    source = graph.producer.get(dq.input[0])
    scale = _array(graph.constants[dq.input[1]]).astype(np.float32)
    axis = _axis(dq)
    if source is not None:  # Q(float weight) -> DQ
        weights = _array(graph.constants[source.input[0]]).astype(np.float32)
    else:  # int8 or uint8 weights (ONNX Runtime's own QDQ output), maybe with a zero point
        weights = _dequantized_weight(graph, dq)
    if reduce_range:
        largest = _per_channel_max(weights, scale, axis)
        scale = np.where(largest > 0, largest / float(REDUCED_WEIGHT_MAX), scale)
        scale = scale.astype(np.float32).reshape(np.shape(_array(graph.constants[dq.input[1]])))
    shape = [1] * weights.ndim
    if np.size(scale) > 1:
        shape[axis % weights.ndim] = -1
    bound = REDUCED_WEIGHT_MAX if reduce_range else 127
    values = np.clip(np.round(weights / scale.reshape(shape)), -bound, bound).astype(np.int8)
    dq.input[0] = _add_constant(model, dq.input[0] + "_int8", values)
    dq.input[1] = _add_constant(model, dq.input[1] + "_cpu", scale)
    if len(dq.input) > 2:
        dq.input[2] = _add_constant(model, dq.input[2] + "_int8",
                                    np.zeros(np.shape(scale), np.int8))


def _unsigned_zero_point(model, graph, node, renamed):
    """Make activation Q/DQ ``node`` unsigned: an int8 zero point z becomes the uint8 z + 128
    (the same grid: q_u8 = q_s8 + 128)."""
    if len(node.input) < 3 or node.input[2] not in graph.constants:
        return
    name = node.input[2]
    values = _array(graph.constants[name])
    if values.dtype != np.int8:
        return
    if name not in renamed:
        renamed[name] = _add_constant(model, name + "_u8",
                                      (values.astype(np.int16) + 128).astype(np.uint8))
    node.input[2] = renamed[name]


def quantized_layers(model):
    """Names of the nodes that read a DequantizeLinear output (the layers INT8 runs), in graph
    order; a node without a name is named by its first output."""
    graph = _Graph(model)
    names = []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if any(graph.producer.get(name) is not None and
               graph.producer[name].op_type == "DequantizeLinear" for name in node.input):
            names.append(_node_name(node))
    return names


def _node_name(node):
    return node.name or node.output[0]


def keep_float(model, layers):
    """A copy of Q/DQ ``model`` whose ``layers`` (names from :func:`quantized_layers`) read
    float inputs: no Q/DQ in front of them, so every runtime runs them in floating point."""
    onnx = lazy_import("onnx", "rewriting Q/DQ models")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    wanted = set(layers)
    graph = _Graph(copy)
    known = set(_node_name(node) for node in copy.graph.node)
    unknown = sorted(wanted - known)
    if unknown:
        raise InputError("no layer named {} in the model".format(", ".join(unknown)))
    for node in copy.graph.node:
        if _node_name(node) not in wanted:
            continue
        for index, name in enumerate(node.input):
            node.input[index] = _float_source(copy, graph, name)
    _drop_dead_nodes(copy)
    return copy


def float_reference(model):
    """The fp32 model inside a Q/DQ ``model``: every layer kept float (see :func:`keep_float`),
    and graph outputs read before their Q/DQ."""
    helper = lazy_import("onnx.helper", "rewriting Q/DQ models")
    model = keep_float(model, quantized_layers(model))
    graph = _Graph(model)
    for value in model.graph.output:
        source = _float_source(model, graph, value.name)
        if source != value.name:
            model.graph.node.extend([helper.make_node("Identity", [source], [value.name])])
            model.graph.node.remove(graph.producer[value.name])
    _drop_dead_nodes(model)
    return model


def _float_source(model, graph, name):
    """The float tensor behind ``name`` when it is a DequantizeLinear output, else ``name``."""
    dq = graph.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return name
    q = graph.producer.get(dq.input[0])
    if q is not None and q.op_type == "QuantizeLinear":
        return q.input[0]
    if dq.input[0] in graph.constants:  # int8 weights without a float copy: dequantize them
        return _add_constant(model, dq.input[0] + "_float",
                             _dequantized_weight(graph, dq).astype(np.float32))
    return name


def _dequantized_weight(graph, dq):
    """The float32 values of the constant integer weight that DequantizeLinear ``dq`` reads:
    ``(q - zero point) * scale``, per channel along its axis."""
    values = _array(graph.constants[dq.input[0]]).astype(np.float32)
    scale = _array(graph.constants[dq.input[1]]).astype(np.float32)
    zero = _array(graph.constants[dq.input[2]]).astype(np.float32) \
        if len(dq.input) > 2 and dq.input[2] in graph.constants else np.zeros_like(scale)
    shape = [1] * values.ndim
    if np.size(scale) > 1:
        shape[_axis(dq) % values.ndim] = -1
    return (values - zero.reshape(shape)) * scale.reshape(shape)


def _drop_dead_nodes(model):
    """Remove Q/DQ nodes whose outputs nothing reads, then initializers nothing reads."""
    outputs = set(value.name for value in model.graph.output)
    changed = True
    while changed:
        read = set(outputs)
        for node in model.graph.node:
            read.update(node.input)
        dead = [node for node in model.graph.node
                if node.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(name in read for name in node.output)]
        changed = bool(dead)
        for node in dead:
            model.graph.node.remove(node)
    read = set()
    for node in model.graph.node:
        read.update(node.input)
    for init in [init for init in model.graph.initializer if init.name not in read]:
        model.graph.initializer.remove(init)


def _fold_relus(model):
    """``Q -> DQ -> Relu -> Q' -> DQ'`` becomes ``Q'' -> DQ''`` with an unsigned zero point 0:
    clamping at 0 is the Relu, and the range [0, 127 s'] of Q' gets all 256 levels (scale
    127 s' / 255). ONNX Runtime then fuses the Relu into the integer kernel before it."""
    graph = _Graph(model)
    for relu in [node for node in model.graph.node if node.op_type == "Relu"]:
        dq = graph.producer.get(relu.input[0])
        q = graph.producer.get(dq.input[0]) if dq is not None else None
        after = graph.consumers.get(relu.output[0], [])
        if (dq is None or dq.op_type != "DequantizeLinear" or q is None or
                q.op_type != "QuantizeLinear" or graph.is_weight_q(q) or
                len(graph.consumers.get(dq.output[0], [])) != 1 or
                len(graph.consumers.get(q.output[0], [])) != 1 or not after or
                any(node.op_type != "QuantizeLinear" or len(node.input) < 3 or
                    node.input[1] not in graph.constants or node.input[2] not in graph.constants
                    for node in after)):
            continue
        for q_out in after:
            scale = _array(graph.constants[q_out.input[1]]).astype(np.float32)
            zero = _array(graph.constants[q_out.input[2]])
            if np.size(scale) != 1 or zero.dtype != np.int8 or np.any(zero != 0):
                break
        else:
            for q_out in after:
                scale = _array(graph.constants[q_out.input[1]]).astype(np.float32)
                new_scale = _add_constant(model, q_out.input[1] + "_relu",
                                          (scale * 127.0 / 255.0).astype(np.float32))
                new_zero = _add_constant(model, q_out.input[2] + "_relu",
                                         np.zeros(np.shape(scale), np.uint8))
                for node in [q_out] + list(graph.consumers.get(q_out.output[0], [])):
                    if node.op_type == "DequantizeLinear":
                        node.input[1], node.input[2] = new_scale, new_zero
                q_out.input[0] = q.input[0]
                q_out.input[1], q_out.input[2] = new_scale, new_zero
            model.graph.node.remove(relu)
            graph = _Graph(model)
    _drop_dead_nodes(model)


def cpu_form(model, path, float_layers=()):
    """The form of Q/DQ ``model`` (an ``onnx.ModelProto``) that ONNX Runtime's CPU runs on a CPU
    taking ``path`` (:class:`CpuInt8Path`): activations unsigned (same scales; after a Relu, its
    range on all 256 levels), weights stored as int8 (7-bit with ``path.reduce_range``),
    ``float_layers`` without Q/DQ. A new model."""
    model = keep_float(model, float_layers)  # a copy even when there are none
    _fold_relus(model)
    graph = _Graph(model)
    renamed = {}
    for node in list(model.graph.node):
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if graph.is_weight_dq(node):
            _fold_weight(model, graph, node, path.reduce_range)
        elif not graph.is_weight_q(node):
            _unsigned_zero_point(model, graph, node, renamed)
    _drop_dead_nodes(model)
    return model
