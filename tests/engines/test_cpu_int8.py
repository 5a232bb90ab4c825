"""engines/cpu_int8.py: which INT8 path a CPU takes (a pure function of /proc/cpuinfo), and the
form ONNX Runtime's CPU engine gets: never the signed S8S8 one, and within the gate's promise."""
import platform

import numpy as np
import pytest

from engines import cpu_int8
from engines.cpu_int8 import CpuInt8Path, cpu_flags, cpu_form, int8_path, quantized_layers

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

# /proc/cpuinfo excerpts (flags shortened to what matters, as real CPUs print them)
EPYC_ZEN2 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B12\n"
             "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma bmi2\n")
SKYLAKE_SERVER = "flags\t\t: sse4_2 avx avx2 avx512f avx512bw avx512vl\n"
CASCADE_LAKE = "flags\t\t: sse4_2 avx avx2 avx512f avx512bw avx512vl avx512_vnni\n"
ALDER_LAKE = "flags\t\t: sse4_2 avx avx2 avx_vnni\n"
JETSON_NANO = ("processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\n"
               "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n")
ORIN = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimdrdm " \
       "lrcpc dcpop asimddp\n"


@pytest.mark.parametrize("text, machine, arch, form, instructions", [
    (EPYC_ZEN2, "x86_64", "x86", "u8s8-reduce-range", "AVX2 without VNNI"),
    (SKYLAKE_SERVER, "x86_64", "x86", "u8s8-reduce-range", "AVX-512 without VNNI"),
    (CASCADE_LAKE, "x86_64", "x86", "u8s8", "VNNI: avx512_vnni"),
    (ALDER_LAKE, "AMD64", "x86", "u8s8", "VNNI: avx_vnni"),
    (JETSON_NANO, "aarch64", "arm", "u8s8", "no dot product (NEON widening multiplies)"),
    (ORIN, "aarch64", "arm", "u8s8", "dot product: asimddp"),
    ("", "riscv64", "riscv64", "u8s8-reduce-range", "unknown"),
])
def test_int8_path_is_a_function_of_the_cpuinfo_text(text, machine, arch, form, instructions):
    path = int8_path(text, machine)
    assert (path.arch, path.form, path.instructions) == (arch, form, instructions)
    assert path.reduce_range == (form == "u8s8-reduce-range")
    assert path.to_dict()["form"] == form and form in path.describe()


HASWELL_CPUID = {"AVX2": True, "AVX512F": False, "AVX512BW": False, "AVX512VNNI": False,
                 "SSSE3": True}
CASCADE_LAKE_CPUID = dict(HASWELL_CPUID, AVX512F=True, AVX512BW=True, AVX512VNNI=True)


def skip_without_vnni():
    """Skip a test that builds an INT8 engine as a CPU with VNNI would (its 8-bit weights, gated
    on this CPU) where this CPU's 16-bit sums would saturate them: its gate would fail, rightly."""
    from engines.cpu_int8 import this_cpu_int8_path
    path = this_cpu_int8_path()
    if path.reduce_range:
        pytest.skip("building an 8-bit-weight INT8 engine needs a CPU that does not saturate it "
                    "(this one: {})".format(path.instructions))


@pytest.mark.parametrize("text, cpuid, form, taken", [
    (CASCADE_LAKE, CASCADE_LAKE_CPUID, "u8s8", False),  # they agree: as before
    (CASCADE_LAKE, None, "u8s8", False),  # no CPUID view: /proc/cpuinfo alone
    (CASCADE_LAKE, {}, "u8s8", False),
    (CASCADE_LAKE, HASWELL_CPUID, "u8s8-reduce-range", True),  # qemu -cpu Haswell on this host
    (ALDER_LAKE, HASWELL_CPUID, "u8s8", False),  # avx_vnni: numpy does not know it, no conflict
    (ALDER_LAKE, dict(HASWELL_CPUID, AVX2=False), "u8s8-reduce-range", True),  # conflict: dropped
    (EPYC_ZEN2, CASCADE_LAKE_CPUID, "u8s8", True),  # CPUID has VNNI the text lacks: CPUID runs
])
def test_cpuid_overrules_a_cpuinfo_that_describes_another_cpu(text, cpuid, form, taken):
    path = int8_path(text, "x86_64", cpuid)
    assert path.form == form and ("CPUID taken" in path.reason) == taken


def test_cpuid_features_is_numpys_run_time_view():
    features = cpu_int8.cpuid_features()
    assert isinstance(features, dict)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert features.get("SSE2") is True and "AVX512VNNI" in features


def test_cpu_flags_reads_x86_and_arm_lines():
    assert {"avx2", "fma"} <= cpu_flags(EPYC_ZEN2) and "avx512_vnni" not in cpu_flags(EPYC_ZEN2)
    assert "asimddp" in cpu_flags(ORIN) and cpu_flags(None) == set()


def test_this_cpu_reads_the_given_cpuinfo(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(EPYC_ZEN2)
    monkeypatch.setattr(cpu_int8.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(cpu_int8, "cpuid_features", lambda: {})  # numpy without the view
    assert cpu_int8.this_cpu_int8_path(str(path)).form == "u8s8-reduce-range"
    assert cpu_int8.this_cpu_int8_path(str(tmp_path / "missing")).arch == "x86"
    monkeypatch.setattr(cpu_int8, "cpuid_features", lambda: HASWELL_CPUID)  # and with it
    path.write_text(CASCADE_LAKE)
    assert "CPUID taken" in cpu_int8.this_cpu_int8_path(str(path)).reason


def _zero_points(model):
    """(activation zero-point dtypes, weight int8 arrays, Q nodes reading initializers)."""
    from onnx import numpy_helper
    constants = dict((init.name, numpy_helper.to_array(init)) for init in model.graph.initializer)
    activation, weights, weight_q = set(), [], 0
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in constants:
            weight_q += 1
        elif node.op_type == "DequantizeLinear" and node.input[0] in constants:
            weights.append(constants[node.input[0]])
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            activation.add(constants[node.input[2]].dtype.name)
    return activation, weights, weight_q


@pytest.mark.parametrize("form", ["u8s8", "u8s8-reduce-range"])
def test_the_cpu_form_is_never_s8s8(qdq_model, form):
    source = onnx.load(qdq_model)
    assert _zero_points(source)[0] == {"int8"}  # the file keeps TensorRT's signed form
    model = cpu_form(source, CpuInt8Path("x86", "test", form, ""))
    onnx.checker.check_model(model)
    activation, weights, weight_q = _zero_points(model)
    assert activation == {"uint8"} and weight_q == 0 and len(weights) == 3
    assert all(w.dtype == np.int8 for w in weights)
    bound = 64 if form == "u8s8-reduce-range" else 127
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == bound
    assert "Relu" not in [node.op_type for node in model.graph.node]  # folded into the Q/DQ


def _accuracy(model_bytes, data):
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    with OnnxRuntimeEngine(model_bytes) as engine:
        return float(np.mean(engine.infer({"input": data.images})["logits"].argmax(1)
                             == data.labels))


@pytest.mark.parametrize("which", ["this CPU's form", "u8s8-reduce-range"])
def test_the_cpu_form_keeps_the_gates_promise(qdq_model, small_cnn_onnx, digits_splits, which):
    """The form this CPU takes, and the reduce-range form (safe on every CPU: 7-bit weights never
    saturate), lose at most the gate's default MAX_ACCURACY_DROP points on the test split and
    agree with fp32 on at least MIN_AGREEMENT of the calibration samples."""
    from engines.cpu_int8 import this_cpu_int8_path
    from engines.int8_gate import MAX_ACCURACY_DROP, MIN_AGREEMENT, Int8Gate, measure
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    path = this_cpu_int8_path() if which == "this CPU's form" else \
        CpuInt8Path("x86", "test", which, "")
    model = cpu_form(onnx.load(qdq_model), path).SerializeToString()
    test = digits_splits[2]
    fp32 = _accuracy(open(small_cnn_onnx, "rb").read(), test)
    assert 100.0 * (fp32 - _accuracy(model, test)) <= MAX_ACCURACY_DROP
    with OnnxRuntimeEngine(small_cnn_onnx) as reference, OnnxRuntimeEngine(model) as engine:
        report = measure(reference, engine, Int8Gate(digits_splits[0].images))
    assert report.agreement >= MIN_AGREEMENT and report.failure is None


def test_float_reference_is_the_fp32_model(qdq_model, small_cnn_onnx, digits_splits):
    from engines.cpu_int8 import float_reference
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    model = float_reference(onnx.load(qdq_model))
    assert not [n for n in model.graph.node if n.op_type.endswith("QuantizeLinear")]
    x = digits_splits[2].images[:64]
    with OnnxRuntimeEngine(small_cnn_onnx) as want, \
            OnnxRuntimeEngine(model.SerializeToString()) as got:
        np.testing.assert_allclose(got.infer({"input": x})["logits"],
                                   want.infer({"input": x})["logits"], rtol=1e-5, atol=1e-5)


def test_keep_float_removes_the_qdq_in_front_of_a_layer(qdq_model):
    from engines.cpu_int8 import keep_float
    model = onnx.load(qdq_model)
    layers = quantized_layers(model)
    conv = [name for name in layers if name.endswith("Conv")][1]
    kept = keep_float(model, [conv])
    assert conv not in quantized_layers(kept) and len(quantized_layers(kept)) == len(layers) - 1
    node = [n for n in kept.graph.node if n.name == conv][0]
    producers = dict((out, n.op_type) for n in kept.graph.node for out in n.output)
    assert all(producers.get(name) != "DequantizeLinear" for name in node.input)
    from basics.errors import InputError
    with pytest.raises(InputError, match="no layer named nope"):
        keep_float(model, ["nope"])


def test_a_qdq_onnx_loaded_directly_runs_in_the_cpu_form(qdq_model, digits_splits, monkeypatch):
    """`toolkit run`/`bench` on MODEL.int8.onnx: a faked CPU without VNNI gets the 7-bit form."""
    from engines.load import load_engine
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    monkeypatch.setattr(cpu_int8, "this_cpu_int8_path",
                        lambda *args: int8_path(EPYC_ZEN2, "x86_64"))
    x = digits_splits[2].images[:64]
    form = cpu_form(onnx.load(qdq_model), int8_path(EPYC_ZEN2, "x86_64"))
    with load_engine(qdq_model) as loaded, OnnxRuntimeEngine(form.SerializeToString()) as want, \
            OnnxRuntimeEngine(qdq_model) as signed:
        got = loaded.infer({"input": x})["logits"]
        np.testing.assert_array_equal(got, want.infer({"input": x})["logits"])
        assert not np.array_equal(got, signed.infer({"input": x})["logits"])


@pytest.mark.parametrize("weight_type", ["QInt8", "QUInt8"])
def test_onnxruntimes_own_qdq_models_get_the_cpu_form_too(small_cnn_onnx, digits_splits, tmp_path,
                                                           weight_type):
    """A Q/DQ model from quantize_static (its default activations, asymmetric; or unsigned ones
    with uint8 weights that have a zero point) converts to the same kind of form: unsigned
    activations, 7-bit int8 weights, the same answers."""
    import onnxruntime.quantization as quantization

    from calibration.sources import BatchReader
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    out = str(tmp_path / "ort.onnx")
    quantization.quantize_static(
        small_cnn_onnx, out, BatchReader(digits_splits[0].images[:256], "input", 32),
        quant_format=quantization.QuantFormat.QDQ,
        weight_type=getattr(quantization.QuantType, weight_type),
        **({"activation_type": quantization.QuantType.QUInt8} if weight_type == "QUInt8" else {}))
    form = cpu_form(onnx.load(out), CpuInt8Path("x86", "test", "u8s8-reduce-range", ""))
    activation, weights, _ = _zero_points(form)
    assert activation == {"uint8"} and all(w.dtype == np.int8 for w in weights)
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    x = digits_splits[2].images
    with OnnxRuntimeEngine(out) as plain, OnnxRuntimeEngine(form.SerializeToString()) as cpu:
        agree = np.mean(plain.infer({"input": x})["logits"].argmax(1)
                        == cpu.infer({"input": x})["logits"].argmax(1))
    assert agree >= 0.95
