"""The analytical energy model: hand-computed figures for tiny graphs, monotonicity, calibration."""
import json

import numpy as np
import pytest

from basics.errors import InputError
from energy_model import (
    AccessCosts,
    EnergyModelConfig,
    LayerShape,
    clear_cache,
    estimate_onnx,
    fit_calibration,
    layer_energy,
    load_measurements,
)

onnx = pytest.importorskip("onnx")
helper = onnx.helper
numpy_helper = onnx.numpy_helper
FLOAT = onnx.TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


def conv_model(weights, in_shape=("N", 2, 4, 4), pads=1, group=1, bias=False):
    """x -> Conv(weights, 'same' padding) -> y."""
    inits = [numpy_helper.from_array(weights.astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(np.zeros(weights.shape[0], np.float32), "b"))
        inputs.append("b")
    node = helper.make_node("Conv", inputs, ["y"], kernel_shape=list(weights.shape[2:]),
                            pads=[pads] * 4, group=group, name="conv")
    return _model([node], [helper.make_tensor_value_info("x", FLOAT, list(in_shape))],
                  [helper.make_tensor_value_info("y", FLOAT, None)], inits)


def gemm_model(weights_mk, bias=True):
    """x (N, K) -> Gemm(transB=1) -> y (N, M)."""
    inits = [numpy_helper.from_array(weights_mk.astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(np.zeros(weights_mk.shape[0], np.float32), "b"))
        inputs.append("b")
    node = helper.make_node("Gemm", inputs, ["y"], transB=1, name="fc")
    return _model([node], [helper.make_tensor_value_info("x", FLOAT, ["N", weights_mk.shape[1]])],
                  [helper.make_tensor_value_info("y", FLOAT, None)], inits)


def test_dense_conv_matches_hand_computed_counts():
    # N=1, C=2, H=W=4, M=3, 3x3, pad 1 -> E=F=4; nnz = 3*2*3*3 = 54; MACs = 16 * 54 = 864
    row = estimate_onnx(conv_model(np.ones((3, 2, 3, 3)))).row("conv")
    assert row.macs == 864 and row.weights == 54 and row.nonzero_weights == 54
    assert row.accesses["dram"] == {"inputs": 32, "weights": 54, "psums": 48}
    # inputs once per pass of <= 16 filters; psums: one channel pass -> written once
    assert row.accesses["buffer"] == {"inputs": 32, "weights": 54, "psums": 48}
    # inputs: E * W * (Cg*R = 6 row deliveries) = 96; weights: E * nnz = 216; psums: E*F*18 rows
    assert row.accesses["array"] == {"inputs": 96, "weights": 216, "psums": 288}
    assert row.accesses["rf"] == {"inputs": 864, "weights": 864, "psums": 1728}
    assert row.energy["dram"] == 134 * 200
    assert row.energy["buffer"] == 134 * 6
    assert row.energy["array"] == 600 * 2
    assert row.energy["rf"] == 3456
    assert row.energy["mac"] == 864
    assert row.total == 26800 + 804 + 1200 + 3456 + 864


def test_sparse_conv_skips_zero_weights_and_rows():
    weights = np.ones((3, 2, 3, 3))
    weights[0, 0, 0, :] = 0  # a whole filter row: not delivered, no psum hand-off
    weights[1, 1, 2, 1] = 0  # a single weight
    row = estimate_onnx(conv_model(weights)).row("conv")
    assert row.nonzero_weights == 50 and row.macs == 16 * 50
    assert row.weight_format == "dense"  # 50 * (1 + 4/16) = 62.5 words > 54 dense
    assert row.accesses["array"] == {"inputs": 96, "weights": 200, "psums": 16 * 17}
    assert row.total == 26800 + 804 + (96 + 200 + 272) * 2 + 4 * 800 + 800


def test_sparse_weight_format_stores_non_zeros_with_an_index():
    weights = np.zeros((16, 8, 3, 3))
    weights[:, :, 1, 1] = 1.0  # 128 of 1152 non-zero
    model = conv_model(weights, in_shape=(1, 8, 4, 4))
    auto = estimate_onnx(model).row("conv")
    dense = estimate_onnx(model, EnergyModelConfig(weight_format="dense")).row("conv")
    assert auto.weight_format == "sparse"
    assert auto.weight_words == 128 * (1 + 4 / 16.0)
    assert dense.weight_words == 1152
    assert auto.total < dense.total


def test_fc_matches_hand_computed_counts_and_8_bit_halves_data_energy():
    row = estimate_onnx(gemm_model(np.ones((10, 32)))).row("fc")
    # K=32, M=10, bias: DRAM 32 + 330 + 10; buffer 32 + 330 + 10 * (2 * ceil(32/16) - 1)
    assert row.accesses["dram"] == {"inputs": 32, "weights": 330, "psums": 10}
    assert row.accesses["buffer"] == {"inputs": 32, "weights": 330, "psums": 30}
    assert row.accesses["array"] == {"inputs": 32, "weights": 320, "psums": 320}
    assert row.energy["mac"] == 330  # 320 MACs + 10 bias adds
    assert row.total == 74400 + 2352 + 1344 + 1280 + 330
    row8 = estimate_onnx(gemm_model(np.ones((10, 32))), EnergyModelConfig(bits=8)).row("fc")
    assert row8.total == pytest.approx((74400 + 2352 + 1344 + 1280) * 0.5 + 330 * 0.25)


def test_matmul_with_constant_equals_gemm_without_bias():
    weights = np.random.RandomState(0).standard_normal((10, 32))
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    model = _model([node], [helper.make_tensor_value_info("x", FLOAT, [1, 32])],
                   [helper.make_tensor_value_info("y", FLOAT, None)],
                   [numpy_helper.from_array(weights.T.astype(np.float32), "w")])
    assert estimate_onnx(model).row("mm").total == estimate_onnx(
        gemm_model(weights, bias=False)).row("fc").total


def test_depthwise_conv_counts_per_group():
    row = estimate_onnx(conv_model(np.ones((4, 1, 3, 3)), in_shape=(1, 4, 4, 4), group=4)).row("conv")
    assert row.macs == 16 * 36
    assert row.accesses["buffer"]["inputs"] == 64  # each group's inputs read by its one filter
    assert row.accesses["array"]["inputs"] == 4 * 4 * 12


def conv_transpose_model(weights, in_shape, stride=2, group=1, bias=False):
    """x -> ConvTranspose(weights (C_in, C_out/group, kH, kW), stride, no padding) -> y."""
    inits = [numpy_helper.from_array(weights.astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(
            np.zeros(weights.shape[1] * group, np.float32), "b"))
        inputs.append("b")
    node = helper.make_node("ConvTranspose", inputs, ["y"], kernel_shape=list(weights.shape[2:]),
                            strides=[stride, stride], group=group, name="up")
    return _model([node], [helper.make_tensor_value_info("x", FLOAT, list(in_shape))],
                  [helper.make_tensor_value_info("y", FLOAT, None)], inits)


def test_conv_transpose_matches_hand_computed_counts():
    # x (1, 2, 3, 3), w (2, 3, 2, 2), stride 2 -> y (1, 3, 6, 6); every one of the 2*3*3 input
    # values is scattered over 3 * 2 * 2 weights: MACs = 2*3*3 * 3*2*2 = 216; weights 24
    row = estimate_onnx(conv_transpose_model(np.ones((2, 3, 2, 2)), (1, 2, 3, 3))).row("up")
    assert row.kind == "conv_transpose" and row.op_type == "ConvTranspose" and not row.note
    assert row.macs == row.dense_macs == 216
    assert row.weights == row.nonzero_weights == 24
    assert row.shape.input_count == 18 and row.shape.output_count == 108
    assert row.accesses["dram"] == {"inputs": 18, "weights": 24, "psums": 108}
    assert row.accesses["buffer"] == {"inputs": 18, "weights": 24, "psums": 108}
    # kernel at each input row (3): input rows W_in=3 x (C_in*kH = 4 deliveries); weights
    # 3 * nnz; psums handed on per input pixel and filter row: 9 * (3*2*2 = 12 rows)
    assert row.accesses["array"] == {"inputs": 36, "weights": 72, "psums": 108}
    assert row.accesses["rf"] == {"inputs": 216, "weights": 216, "psums": 432}
    assert row.total == 150 * 200 + 150 * 6 + 216 * 2 + 4 * 216 + 216
    # the same formula as a Conv with the same counts: a layer_energy of the row's shape agrees
    assert layer_energy(row.shape, EnergyModelConfig(), np.ones((2, 3, 2, 2))).total == row.total
    estimate = estimate_onnx(conv_transpose_model(np.ones((2, 3, 2, 2)), (1, 2, 3, 3), bias=True))
    assert estimate.macs == 216 and estimate.weights == 24
    assert estimate.row("up").energy["mac"] == 216 + 108  # one bias add per output


def test_grouped_sparse_conv_transpose_reads_the_onnx_weight_layout():
    # x (1, 4, 3, 3), w (4, 2, 2, 2), group 2 -> y (1, 4, 6, 6); MACs = 4*3*3 * 2*2*2 = 288
    weights = np.ones((4, 2, 2, 2))
    dense = estimate_onnx(conv_transpose_model(weights, (1, 4, 3, 3), group=2)).row("up")
    assert dense.macs == 288 and dense.weights == 32 and dense.shape.output_count == 144
    assert dense.accesses["buffer"]["inputs"] == 36  # each group's 2 filters: one pass
    weights[2:, 1] = 0  # nothing reaches output channel 3 (group 1's second filter)
    weights[0, 0, 0, :] = 0  # one filter row of output channel 0
    sparse = estimate_onnx(conv_transpose_model(weights, (1, 4, 3, 3), group=2)).row("up")
    assert sparse.nonzero_weights == 32 - 8 - 2 and sparse.macs == 9 * 22
    # filter rows (m, c, r): 4*2*2 = 16, minus 4 of filter 3, minus 1
    assert sparse.accesses["array"]["psums"] == 9 * 11
    # input channel 0 silenced: its 2 kernel rows are no longer delivered (8 -> 6 deliveries of
    # an input row of 3 at each of the 3 input rows) -- the (C_in, C_out/g) layout is honoured
    weights = np.ones((4, 2, 2, 2))
    weights[0] = 0
    silent = estimate_onnx(conv_transpose_model(weights, (1, 4, 3, 3), group=2)).row("up")
    assert dense.accesses["array"]["inputs"] == 3 * 3 * 8
    assert silent.accesses["array"]["inputs"] == 3 * 3 * 6
    with pytest.raises(InputError, match="do not divide into 2 groups"):
        LayerShape("conv_transpose", in_channels=3, out_channels=4, groups=2)


def test_elementwise_and_pooling_stay_on_chip():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
             helper.make_node("Add", ["p", "p"], ["y"], name="add")]
    model = _model(nodes, [helper.make_tensor_value_info("x", FLOAT, [1, 3, 4, 4])],
                   [helper.make_tensor_value_info("y", FLOAT, None)], [])
    estimate = estimate_onnx(model)
    relu, gap, add = (estimate.row(n) for n in ("relu", "gap", "add"))
    assert relu.energy["dram"] == gap.energy["dram"] == 0
    assert relu.accesses["buffer"] == {"inputs": 48, "weights": 0, "psums": 48}
    assert relu.energy["mac"] == 48
    assert gap.energy["mac"] == 3 * 16  # one op per window element
    assert add.accesses["buffer"]["inputs"] == 6  # two activation operands of 3 values


def test_energy_falls_monotonically_with_sparsity_and_bits():
    rng = np.random.RandomState(0)
    weights = rng.standard_normal((32, 16, 3, 3))
    order = np.argsort(np.abs(weights).reshape(-1))
    totals = []
    for sparsity in (0.0, 0.2, 0.4, 0.6, 0.8, 0.95):
        pruned = weights.copy().reshape(-1)
        pruned[order[:int(sparsity * pruned.size)]] = 0
        totals.append(estimate_onnx(conv_model(pruned.reshape(weights.shape),
                                               in_shape=(1, 16, 8, 8))).total)
    assert all(a > b for a, b in zip(totals, totals[1:])), totals
    model = conv_model(weights, in_shape=(1, 16, 8, 8))
    by_bits = [estimate_onnx(model, EnergyModelConfig(bits=b)).total for b in (16, 8, 4)]
    assert by_bits[0] > by_bits[1] > by_bits[2]
    # data moves half the bytes at 8 bits, MACs cost a quarter: between 1/4 and 1/2 of 16-bit
    assert by_bits[0] / 4 < by_bits[1] <= by_bits[0] / 2


def test_layer_energy_of_a_shape_equals_the_graph_row():
    weights = np.random.RandomState(1).standard_normal((3, 2, 3, 3))
    weights[0] = 0
    row = estimate_onnx(conv_model(weights)).row("conv")
    again = layer_energy(row.shape, EnergyModelConfig(), weights)
    assert again.energy == row.energy
    shape = LayerShape("conv", in_channels=2, in_hw=(4, 4), out_channels=3, out_hw=(4, 4),
                       kernel_hw=(3, 3))
    assert layer_energy(shape, EnergyModelConfig(), weights).total == row.total


def test_quantized_weights_behind_dequantize_count_zero_points_as_zeros():
    raw = np.full((3, 2, 3, 3), 5, dtype=np.int8)
    raw[0] = 2  # == zero point: zero weights
    inits = [numpy_helper.from_array(raw, "wq"), numpy_helper.from_array(np.float32(0.1), "s"),
             numpy_helper.from_array(np.int8(2), "z")]
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"]),
             helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1] * 4,
                              name="conv")]
    model = _model(nodes, [helper.make_tensor_value_info("x", FLOAT, [1, 2, 4, 4])],
                   [helper.make_tensor_value_info("y", FLOAT, None)], inits)
    assert estimate_onnx(model).row("conv").nonzero_weights == 36


def test_real_model_rows_totals_and_json(small_cnn_onnx):
    estimate = estimate_onnx(small_cnn_onnx)
    kinds = [row.kind for row in estimate.rows]
    assert kinds.count("conv") == 2 and kinds.count("fc") == 1
    assert estimate.total == pytest.approx(sum(row.total for row in estimate.rows))
    assert estimate.free_ops.get("Flatten") == 1
    assert not estimate.calibrated and estimate.total_mj is None
    data = json.loads(json.dumps(estimate.to_dict()))
    assert data["unit"].startswith("normalized units")
    assert len(data["layers"]) == len(estimate.rows)
    text = "\n".join(estimate.lines())
    assert "normalized units" in text and "features.1.0/Conv" in text


def test_results_are_cached_per_file_hash(tmp_path):
    clear_cache()
    path = tmp_path / "m.onnx"
    onnx.save(conv_model(np.ones((3, 2, 3, 3))), str(path))
    first = estimate_onnx(str(path))
    assert estimate_onnx(str(path)) is first
    assert estimate_onnx(str(path), EnergyModelConfig(bits=8)) is not first
    onnx.save(conv_model(np.zeros((3, 2, 3, 3))), str(path))
    assert estimate_onnx(str(path)).total < first.total


def test_calibration_recovers_a_known_scale(tmp_path):
    entries = []
    for i, channels in enumerate((2, 4, 8)):
        path = tmp_path / "m{}.onnx".format(i)
        onnx.save(conv_model(np.ones((channels, 2, 3, 3))), str(path))
        units = estimate_onnx(str(path)).total
        entries.append({"onnx": path.name, "energy_mj_per_inference": 2.5e-6 * units})
    measured = tmp_path / "measured.json"
    measured.write_text(json.dumps(entries))
    fit = fit_calibration(str(measured))
    assert fit.mj_per_unit == pytest.approx(2.5e-6)
    assert fit.rel_rms == pytest.approx(0.0, abs=1e-9)
    calibrated = estimate_onnx(str(tmp_path / "m0.onnx"), EnergyModelConfig().calibrated(
        fit.mj_per_unit))
    assert calibrated.total_mj == pytest.approx(entries[0]["energy_mj_per_inference"])
    assert calibrated.to_dict()["unit"] == "mJ per inference"
    # one model measured 10% high: the fit error shows it
    entries[0]["energy_mj_per_inference"] *= 1.1
    measured.write_text(json.dumps(entries))
    fit = fit_calibration(str(measured))
    assert fit.rel_rms > 0.01
    assert [row["rel_error"] < 0 for row in fit.per_model] == [True, False, False]


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ("[]", "non-empty JSON list"),
    ('[{"onnx": "m.onnx"}]', "needs 'onnx' and 'energy_mj_per_inference'"),
    ('[{"onnx": "m.onnx", "energy_mj_per_inference": -1}]', "positive number"),
    ('[{"onnx": "missing.onnx", "energy_mj_per_inference": 1}]', "no such ONNX file"),
    ('[{"onnx": "m.onnx", "energy_mj_per_inference": 1, "bits": 0}]', "bits must be"),
])
def test_bad_measurements_are_one_line_errors(tmp_path, content, message):
    onnx.save(conv_model(np.ones((3, 2, 3, 3))), str(tmp_path / "m.onnx"))
    path = tmp_path / "measured.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        fit_calibration(str(path))
    assert "\n" not in str(info.value)


def test_missing_measurements_file():
    with pytest.raises(InputError, match="no such measurements file"):
        load_measurements("/nonexistent/measured.json")


def test_bad_models_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no such ONNX file"):
        estimate_onnx(str(tmp_path / "none.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model at all")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        estimate_onnx(str(junk))
    with pytest.raises(InputError, match="dynamic axis 2 besides the batch"):
        estimate_onnx(conv_model(np.ones((3, 2, 3, 3)), in_shape=("N", 2, "H", 4)))
    with pytest.raises(InputError, match="ONNX path, bytes or ModelProto"):
        estimate_onnx(42)
    only_free = _model([helper.make_node("Identity", ["x"], ["y"])],
                       [helper.make_tensor_value_info("x", FLOAT, [1, 2])],
                       [helper.make_tensor_value_info("y", FLOAT, None)], [])
    with pytest.raises(InputError, match="no layer the energy model can cost"):
        estimate_onnx(only_free)


@pytest.mark.parametrize("kwargs, message", [
    ({"bits": 0}, "bits must be"), ({"bits": 8.5}, "bits must be"), ({"batch": 0}, "batch must be"),
    ({"weight_format": "csr"}, "weight_format must be"), ({"index_bits": -1}, "index_bits"),
    ({"mj_per_unit": 0}, "mj_per_unit"), ({"costs": {"dram": -1}}, "access cost 'dram'"),
    ({"filters_per_pass": 0}, "filters_per_pass"),
])
def test_bad_config_values(kwargs, message):
    with pytest.raises(InputError, match=message):
        EnergyModelConfig(**kwargs)


def test_custom_costs_change_the_estimate():
    model = conv_model(np.ones((3, 2, 3, 3)))
    cheap_dram = EnergyModelConfig(costs=AccessCosts(dram=100))
    row = estimate_onnx(model, cheap_dram).row("conv")
    assert row.energy["dram"] == 134 * 100


# -- the batch computed ------------------------------------------------------------------------
def test_a_fixed_batch_1_model_is_computed_at_batch_1_whatever_batch_is_asked():
    weights = np.ones((3, 2, 3, 3))
    fixed = estimate_onnx(conv_model(weights, in_shape=(1, 2, 4, 4)), EnergyModelConfig(batch=16))
    one = estimate_onnx(conv_model(weights), EnergyModelConfig(batch=1))
    assert fixed.batch == 1 and fixed.batch_fixed
    assert fixed.total == pytest.approx(one.total) and fixed.per_image == pytest.approx(one.total)
    assert "fixes the batch at 1; the requested batch 16 does not apply" in fixed.batch_note
    lines = fixed.lines()
    assert "batch 1 fixed by the model" in lines[0] and "batch 16" not in lines[0]
    assert fixed.to_dict()["batch"] == 1
    dynamic = estimate_onnx(conv_model(weights), EnergyModelConfig(batch=16))
    assert dynamic.batch == 16 and not dynamic.batch_fixed and dynamic.batch_note is None
    assert dynamic.per_image == pytest.approx(dynamic.total / 16)


def test_a_fixed_batch_4_model_reports_batch_4_and_per_image_figures():
    weights = np.ones((3, 2, 3, 3))
    fixed = estimate_onnx(conv_model(weights, in_shape=(4, 2, 4, 4)))  # config batch 1
    dynamic4 = estimate_onnx(conv_model(weights), EnergyModelConfig(batch=4))
    one = estimate_onnx(conv_model(weights))
    assert fixed.batch == 4 and fixed.total == pytest.approx(dynamic4.total)
    assert fixed.per_image == pytest.approx(dynamic4.total / 4)
    assert fixed.total > 3 * one.total  # four images: the total is not one image's figure
    assert fixed.per_image <= one.total  # weights read once for four images
    data = fixed.to_dict()
    assert data["batch"] == 4 and data["energy_units_per_image"] == pytest.approx(fixed.per_image)
    total_line = [line for line in fixed.lines() if line.startswith("total:")][0]
    assert "per inference of 4 images" in total_line and "per image" in total_line


def test_calibration_divides_a_fixed_batch_models_estimate_by_its_batch(tmp_path):
    """Measurements are per sample: an engine with a fixed batch of 4 must be fitted on a
    quarter of its per-inference estimate (it used to be fitted 4-fold wrong)."""
    path = tmp_path / "b4.onnx"
    onnx.save(conv_model(np.ones((3, 2, 3, 3)), in_shape=(4, 2, 4, 4)), str(path))
    per_image = estimate_onnx(conv_model(np.ones((3, 2, 3, 3))),
                              EnergyModelConfig(batch=4)).total / 4
    measured = tmp_path / "measured.json"
    measured.write_text(json.dumps([{"onnx": path.name,
                                     "energy_mj_per_inference": 2.0e-6 * per_image}]))
    fit = fit_calibration(str(measured))
    assert fit.mj_per_unit == pytest.approx(2.0e-6)
    calibrated = estimate_onnx(str(path), EnergyModelConfig().calibrated(fit.mj_per_unit))
    assert calibrated.per_image_mj == pytest.approx(2.0e-6 * per_image)
    assert calibrated.to_dict()["energy_mj_per_image"] == pytest.approx(2.0e-6 * per_image)


# -- activation sparsity -----------------------------------------------------------------------
def relu_net(rng):
    """x (N, 4, 5, 5) -> 1x1 Conv (8) -> Relu -> 1x1 Conv (6) -> Relu -> Flatten -> Gemm (3)."""
    w1 = rng.randn(8, 4, 1, 1).astype(np.float32)
    w2 = rng.randn(6, 8, 1, 1).astype(np.float32)
    w3 = rng.randn(3, 150).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[1, 1], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w3"], ["y"], transB=1, name="fc")]
    inits = [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))]
    model = _model(nodes, [helper.make_tensor_value_info("x", FLOAT, ["N", 4, 5, 5])],
                   [helper.make_tensor_value_info("y", FLOAT, None)], inits)
    return model, (w1, w2, w3)


def test_measured_zeros_of_a_relu_network_lower_its_estimate(tmp_path):
    pytest.importorskip("onnxruntime")
    from energy_model import measure_activation_sparsity
    rng = np.random.RandomState(0)
    model, (w1, w2, _) = relu_net(rng)
    path = str(tmp_path / "relu.onnx")
    onnx.save(model, path)
    images = rng.randn(40, 4, 5, 5).astype(np.float32)
    sparsity = measure_activation_sparsity(path, images, "noise", batch_size=16)
    # the zero fractions are those of the ReLU outputs, computed here by hand
    r1 = np.maximum(np.einsum("mc,nchw->nmhw", w1[:, :, 0, 0], images), 0)
    r2 = np.maximum(np.einsum("mc,nchw->nmhw", w2[:, :, 0, 0], r1), 0)
    assert sparsity.zero_fraction("x") == 0.0
    assert sparsity.zero_fraction("r1") == pytest.approx(np.mean(r1 == 0))
    assert sparsity.zero_fraction("f") == pytest.approx(np.mean(r2 == 0))
    assert 0.3 < sparsity.zero_fraction("r1") < 0.7 and sparsity.samples == 40
    dense = estimate_onnx(path)
    sparse = estimate_onnx(path, activations=sparsity)
    assert sparse.total < dense.total
    # conv1: no zeros in x, so every MAC runs; what it stores is its ReLU's output r1
    conv1, before = sparse.row("conv1"), dense.row("conv1")
    assert conv1.macs == before.macs and conv1.energy["mac"] == before.energy["mac"]
    assert conv1.output_zero_fraction == pytest.approx(sparsity.zero_fraction("r1"))
    outputs = before.accesses["dram"]["psums"]
    assert conv1.accesses["dram"]["psums"] == pytest.approx(
        outputs * (1 - sparsity.zero_fraction("r1")) * (1 + 4 / 16.0))
    assert conv1.accesses["dram"]["inputs"] == before.accesses["dram"]["inputs"]
    for name, tensor in (("conv2", "r1"), ("fc", "f")):
        z = sparsity.zero_fraction(tensor)
        row, before = sparse.row(name), dense.row(name)
        assert row.input_zero_fraction == pytest.approx(z)
        assert row.macs == pytest.approx(before.macs * (1 - z))
        assert row.accesses["dram"]["inputs"] == pytest.approx(
            before.accesses["dram"]["inputs"] * (1 - z) * 1.25)
        assert row.energy["mac"] < before.energy["mac"] and row.total < before.total
        assert row.accesses["buffer"] == before.accesses["buffer"]  # zeros still move on-chip
    assert sparse.row("conv2").output_zero_fraction == pytest.approx(
        sparsity.zero_fraction("r2"))  # stored through Relu (Flatten is not fused: f == r2)
    assert "zeros measured on noise (40 samples)" in "\n".join(sparse.lines())
    assert sparse.to_dict()["activation_sparsity"]["zero_fractions"]["r1"] == pytest.approx(
        sparsity.zero_fraction("r1"))
    # without measurements nothing changes, and the output says activations count as non-zero
    assert estimate_onnx(path, activations=None) is dense
    assert dense.to_dict()["activation_sparsity"] is None
    assert all(row.input_zero_fraction == 0.0 for row in dense.rows)
    assert any("every one counted non-zero" in line for line in dense.lines())


def test_a_fixed_batch_model_is_measured_in_whole_batches(tmp_path):
    pytest.importorskip("onnxruntime")
    from energy_model import measure_activation_sparsity
    rng = np.random.RandomState(1)
    model, _ = relu_net(rng)
    model.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 8
    path = str(tmp_path / "relu8.onnx")
    onnx.save(model, path)
    sparsity = measure_activation_sparsity(path, rng.randn(20, 4, 5, 5), batch_size=3)
    assert sparsity.samples == 16
    with pytest.raises(InputError, match="needs at least 8 image"):
        measure_activation_sparsity(path, rng.randn(5, 4, 5, 5))
