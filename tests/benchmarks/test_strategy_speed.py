"""benchmarks/strategy_speed.py: the rebuilt peer loop, the replays, and the aims report."""
import numpy as np
import pytest

from benchmarks import strategy_speed as bench

torch = pytest.importorskip("torch")


def _pair(folder):
    from export import models
    torch.manual_seed(0)
    small, large = models.tiny_cnn().eval(), models.small_cnn().eval()
    paths = [bench.export(m, str(folder / (n + ".onnx"))) for n, m in (("a", small),
                                                                         ("b", large))]
    return small, large, paths


def test_peer_loop_gives_the_cascades_labels_with_the_same_weights(tmp_path):
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from toolkit.strategies import Cascade, Single
    small, large, paths = _pair(tmp_path)
    images = np.random.RandomState(0).rand(60, 1, 8, 8).astype(np.float32)
    a, b = (OnnxRuntimeEngine(p, threads=1, confidence_head=True) for p in paths)
    conf = Single(a).classify(images).confidence
    threshold = float(np.median(conf))
    cascade = Cascade(a, b, threshold, post_check=True)
    ours = np.concatenate([cascade.classify(images[i:i + 1]).labels for i in range(60)])
    theirs = bench.peer_loop(small, large, [torch.from_numpy(x) for x in images], threshold)
    assert 0 < cascade.stats()["handoffs"] < 60
    assert np.mean(ours == np.array(theirs)) >= 0.95  # float rounding at exact ties only


def test_replays_give_the_real_answers_and_count_the_same_calls(tmp_path):
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from toolkit.strategies import Cascade, Memo, Single
    _, _, paths = _pair(tmp_path)
    engines = [OnnxRuntimeEngine(p, threads=1, confidence_head=True) for p in paths]
    images = np.random.RandomState(1).rand(40, 1, 8, 8).astype(np.float32)
    threshold = float(np.median(Single(engines[0]).classify(images).confidence))
    log = []
    replays = [bench.Replay(engine, log) for engine in engines]

    def make(first, second):
        return Memo(Cascade(Single(first), Single(second), threshold, post_check=True))
    real, replayed = make(*engines), make(*replays)
    batches = bench.batches_of(np.concatenate([images, images[::-1]]), 1)
    expected = [real.classify(x) for x in batches]
    assert [r.labels.tolist() for r in (replayed.classify(x) for x in batches)] == \
        [r.labels.tolist() for r in expected]
    calls = len(log)
    assert calls == real.stats()["inner_samples"] + real.stats()["handoffs"]
    for replay in replays:
        replay.recording, replay.index = False, 0
    replayed.clear()
    again = [replayed.classify(x) for x in batches]
    for got, want in zip(again, expected):
        np.testing.assert_array_equal(got.probs, want.probs)
    assert len(log) == calls and sum(r.index for r in replays) == calls
    own = bench.own_work(lambda a, b: Cascade(Single(a), Single(b), threshold), engines,
                         batches[:10], rounds=1, passes=1)
    assert isinstance(own, float)


def test_report_prints_every_aim_with_its_verdict(capsys):
    results = {key: (bound if relation == "<=" else bound) for key, relation, bound, _ in
               bench.AIMS}
    results["cascade_own_us_b1"] = 11.0
    for key in ("host_own_us_b1", "host_own_share_b1", "host_own_share_b32",
                "host_peer_speedup_b1", "host_peer_speedup_b32", "convert_host_us_b1",
                "cascade_own_us_b32", "cascade_own_share_b1", "convert_us_b1",
                "engines_peer_speedup_b32", "engines_peer_speedup_b1", "int8_peer_speedup_b32",
                "int8_agreement", "int8_accuracy_points", "fp32_accuracy_points",
                "large_engine_us_per_image_b32"):
        results[key] = 1.0
    results["large_macs_per_image"] = 4.0e6
    results["large_engine_us_per_image_b32"] = 1000.0
    results.update(matmul_gmacs=100.0, peer_us=200.0, handoff_rate=0.25, small_macs_per_image=0.0,
                   memo_strategy_us_b1=20.0, convert_memo_strategy_us_b1=30.0,
                   memo_miss_adds_real_us_b1=2.5, convert_memo_miss_adds_real_us_b1=3.5)
    bench.report(results)
    out = capsys.readouterr().out
    assert "4.00 MMACs per image" in out and "4.0 GMAC/s" in out
    # 40x needs 200 / 40 = 5 us; 25% of 4 MMACs (and no small model) at 100 GMAC/s is 10 us
    assert "at most 5.00 us per sample" in out and "at least 10.00 us per sample" in out
    assert "out of reach in fp32 on this core" in out
    # the memo: m + h = 3 + 5 against 0.1 c = 2 us (cascade) and 3 us (CBNet path)
    assert "0.1 c = 2.00 us (c = 20.00 us" in out and "m + h = 8.00 us" in out
    assert "at best 0.5 - (m + h) / (2 c) = 30.0%" in out
    assert "adds 2.50 us (cascade), 3.50 us (CBNet path)" in out and "0.1 c = 3.00 us (c = 30.00 us" in out
    for key, _, _, _ in bench.AIMS:
        line = [row for row in out.splitlines() if row.startswith(key + " ")]
        assert len(line) == 1
        assert ("NOT met" in line[0]) == (key == "cascade_own_us_b1")
    assert bench.verdict(">=", 8.0, 7.99) == "NOT met" and bench.verdict("<=", 3.0, 3.0) == "met"


def test_int8_engine_is_the_toolkits_int8_build_and_agrees_with_fp32(tmp_path):
    from calibration.datasets import load_digits_variant
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from export import models
    torch.manual_seed(0)
    path = bench.export(models.small_cnn().eval(), str(tmp_path / "s.onnx"))
    train = load_digits_variant("digits").split((0.5, 0.2, 0.3))[0]
    int8 = bench.int8_engine(path, train)
    fp32 = OnnxRuntimeEngine(path, threads=1, confidence_head=True)
    import onnx
    ops = set(node.op_type for node in onnx.load(str(tmp_path / "s.qdq.onnx")).graph.node)
    assert "QuantizeLinear" in ops and (tmp_path / "s.int8.engine").is_file()
    images = np.ascontiguousarray(train.images[:64])
    agree = np.mean(int8.infer({"input": images})["label"] == fp32.infer({"input": images})["label"])
    assert agree >= 0.9
    assert bench.engine_us_per_image(int8, images, rounds=1) > 0
    assert bench.macs_per_image(models.large_cnn()) > 1e6


def test_the_matmul_rate_is_the_fastest_call_of_a_one_thread_product(monkeypatch):
    ticks = iter([0.0, 0.004, 1.0, 1.002, 2.0, 2.003])  # calls of 4, 2 and 3 ms
    monkeypatch.setattr(bench, "CLOCK", [lambda: next(ticks)])
    rate = bench.matmul_gmacs(size=64, runs=3)
    assert rate == pytest.approx(64 ** 3 / 0.002 / 1e9)


def test_the_peer_ratio_floor_says_when_fp32_can_reach_40x():
    results = {"peer_us": 480.0, "handoff_rate": 0.25, "large_macs_per_image": 4.0e6,
               "small_macs_per_image": 0.2e6, "matmul_gmacs": 100.0}
    line = bench.floor_of_peer_ratio(results)  # (0.2 + 0.25 x 4) MMACs at 100 GMAC/s: 12 us
    assert "1.20 MMACs per sample" in line and "at least 12.00 us" in line
    assert "at most 12.00 us" in line and line.endswith("within reach")
    results["peer_us"] = 479.0
    assert bench.floor_of_peer_ratio(results).endswith("out of reach in fp32 on this core")
