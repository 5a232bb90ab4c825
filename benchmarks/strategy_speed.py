"""Issue 15's aims: the strategies' own host work per call, against the engines and against the
peer's own loop, measured side by side in one process with one thread.

Models: ``export.models.small_cnn`` (A) and ``large_cnn`` (B), trained here on the digits train
split (8x8, fixed seeds), the threshold the cheapest on the validation split within 0.3 points of
B's accuracy; post-check on (the peer's ``double_ps``). Data: the digits test split (540 images).
Engines: ONNX Runtime, CPU, one intra-op thread, with the confidence head
(``engines.confidence_head``: softmax and top-1 in the graph); "host softmax" rows use the same
models without it.

**The peer's loop, rebuilt.** Kinnas et al.'s code (github.com/michaelkinnas/Reducing-Inference-
Energy-Consumption-Using-Two-Complementary-CNNs, ``utils/workload.py``, ``double_ps`` with the
``maxp`` score of ``utils/score_functions.py``) is not downloaded; its loop's work is rebuilt in
:func:`peer_loop`: under ``torch.inference_mode()``, per sample: ``X.unsqueeze(dim=0)``, eager
PyTorch ``model_a(X)``, the score ``torch.max(torch.softmax(logits, dim=1)).item()``; below the
threshold ``model_b(X)`` and its score, B's ``argmax(...).item()`` when its score is higher, else
A's; the label appended to a list. Left out (each would only slow the peer): its progress bar,
its ``ResourceMonitor`` (two ``psutil.cpu_percent`` calls and a dict per sample), the ``input()``
prompt, and the data set's per-sample transforms (the tensors are made once, before timing).
The same weights (the PyTorch modules exported to ONNX for the toolkit), the same data, one
thread (``torch.set_num_threads(1)``).

**Own work** of a strategy = everything outside its engine calls, per call and as a share of the
engine time. Measured directly: each engine's outputs for one pass are recorded, then the
strategy runs passes over replays of them (:class:`Replay`: a list read per call), less passes
making the same calls on the replays alone. (Subtracting a pass of the real engines instead
gives the same figure on a quiet machine, but on a loaded one the noise of ~100 us engine calls
swamps a few us.) "Engines only": the real engine calls the strategy makes (the same batches, B
on the same handed-off samples, feeds built before timing). Every figure: the median over interleaved rounds
(the contenders take turns, the order rotating) of full passes. Memo figures at batch 1: an
exact hit (the whole ``classify`` call), what a miss adds over the strategy alone (cache cleared
before each pass of distinct images), a dHash hit, and the duplicated protocol (the test split
then a shuffled copy, ``toolkit.deploy.duplicate``; the cache starts empty each pass). The CBNet
path: ``Convert(converter, Single(classifier))`` with CBNet's converting autoencoder and
small_cnn (timing only: the converter is untrained).

**Floors.** Two lines say what the two hardest aims need, from the run's own figures: the time
per sample that 40x the peer at batch 32 allows, next to the engines' arithmetic (small_cnn on
every sample, large_cnn on those handed off) at the best rate of a one-thread fp32 MatMul on this
core (:func:`matmul_gmacs`); and the m + h (a miss's added work plus a hit) that 45% on the
duplicated protocol allows, 0.1 c, next to the measured one. A memo miss is also timed on the
real engines (the memo's misses less its own strategy alone), where it costs more than on
replays.

The machine's load inflates every microsecond figure; ratios measured in one run are fairer.

    python -m benchmarks.strategy_speed [--quick] [--rounds N]
"""
import argparse
import os
import tempfile
import time
import warnings

import numpy as np

from benchmarks import common
from engines.base import Engine

# (key, relation, bound, what) in print order
AIMS = (
    ("cascade_own_us_b1", "<=", 10.0, "cascade's own work per call at batch 1 (us)"),
    ("cascade_own_share_b32", "<=", 0.05, "cascade's own work / engine time at batch 32"),
    ("peer_speedup_b1", ">=", 8.0, "peer loop time / cascade time, batch 1"),
    ("peer_speedup_b32", ">=", 40.0, "peer loop (batch 1) / cascade at batch 32, per sample"),
    ("memo_hit_us_b1", "<=", 3.0, "memo exact hit per call at batch 1 (us)"),
    ("memo_miss_adds_us_b1", "<=", 5.0, "memo miss minus the cascade alone, batch 1 (us)"),
    ("memo_dhash_hit_us_b1", "<=", 10.0, "memo dHash hit per call at batch 1 (us)"),
    ("memo_dup_reduction_b1", ">=", 0.45, "1 - memo time / cascade time, duplicated, batch 1"),
    ("convert_own_us_b1", "<=", 10.0, "CBNet path's own work per call at batch 1 (us)"),
    ("convert_memo_hit_us_b1", "<=", 3.0, "CBNet path: memo exact hit per call (us)"),
    ("convert_memo_miss_adds_us_b1", "<=", 5.0, "CBNet path: memo miss adds (us)"),
    ("convert_memo_dhash_hit_us_b1", "<=", 10.0, "CBNet path: memo dHash hit per call (us)"),
    ("convert_memo_dup_reduction_b1", ">=", 0.45, "CBNet path: duplicated protocol reduction"),
)


class Settings(object):
    def __init__(self, quick=False, rounds=None):
        self.quick = quick
        self.rounds = rounds or (3 if quick else 9)
        self.epochs = 2 if quick else 40  # the pool recipe's 40 epochs for the small model
        self.large_epochs = 2 if quick else 15
        self.samples = 128 if quick else None  # quick: the first 128 test images
        self.passes = 2 if quick else 5  # passes per round when timing own work on replays


# -- models and data ---------------------------------------------------------------------------
def train_pair(settings):
    """(small, large, converter) PyTorch modules in eval mode and the (train, val, test) split."""
    import torch

    from calibration.datasets import load_digits_variant
    from export import models, training
    from export.recipes.pool_models import converting_autoencoder
    train, val, test = load_digits_variant("digits").split((0.5, 0.2, 0.3))
    torch.manual_seed(1)  # the initial weights too: every run trains the same models
    small = training.train_classifier(models.small_cnn(), train,
                                      training.TrainConfig(epochs=settings.epochs, seed=1))
    torch.manual_seed(2)
    large = training.train_classifier(models.large_cnn(), train,
                                      training.TrainConfig(epochs=settings.large_epochs, seed=2))
    torch.manual_seed(3)
    converter = converting_autoencoder(1, (8, 8)).eval()
    if settings.samples:
        test = test.subset(slice(0, settings.samples))
    return small, large, converter, (train, val, test)


def export(module, path):
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, 1, 8, 8),), path, dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return path


def choose_threshold(small, large, val):
    """The cheapest threshold (fewest handoffs) whose validation accuracy is within 0.3 points of
    B's, post-check on."""
    from export.training import predict_logits
    from toolkit.strategies.scores import softmax
    from toolkit.strategies.thresholds import threshold_curve
    probs_a = softmax(predict_logits(small, val.images))
    probs_b = softmax(predict_logits(large, val.images))
    curve = threshold_curve(probs_a, probs_b, val.labels, post_check=True)
    ok = np.nonzero(curve.accuracy >= curve.accuracy_second - 0.003)[0]
    best = ok[np.argmin(curve.handoff_rate[ok])] if len(ok) else len(curve.thresholds) - 1
    return float(curve.thresholds[best])


def int8_engine(onnx_path, train):
    """``toolkit calibrate --format qdq`` and ``toolkit build --precision int8``'s code on
    ``onnx_path`` (512 training images, the accuracy gate on): the ONNX Runtime INT8 engine in the
    form this CPU takes, with the confidence head, one thread."""
    from calibration.qdq import QdqConfig, quantize_qdq
    from engines.build import build_engine
    from engines.build_config import BuildConfig
    from engines.int8_gate import Int8Gate
    from engines.load import load_engine
    calibration = np.ascontiguousarray(train.images[:512])
    qdq_path = onnx_path[:-len(".onnx")] + ".qdq.onnx"
    engine_path = onnx_path[:-len(".onnx")] + ".int8.engine"
    quantize_qdq(onnx_path, calibration, qdq_path, QdqConfig(batch_size=16))
    build_engine(qdq_path, engine_path, BuildConfig(precision="int8", backend="onnxruntime",
                                                    max_batch=256), Int8Gate(calibration))
    return load_engine(engine_path, threads=1, confidence_head=True)


def macs_per_image(module):
    """Multiply-accumulates of one 1x8x8 image through ``module``
    (:func:`benchmarks.int8.macs_per_image`)."""
    from benchmarks.int8 import macs_per_image as count
    return count(module, (1, 8, 8))


def engine_us_per_image(engine, images, rounds):
    """The engine's microseconds per image at batch 32 (one thread)."""
    feeds = [{"input": np.ascontiguousarray(x)} for x in batches_of(images, 32)]
    run = engine.run_unchecked

    def one_pass():
        for feed in feeds:
            run(feed)
    return interleaved({"engine": one_pass}, rounds)["engine"] / len(images) * 1e6


def matmul_gmacs(size=512, runs=30):
    """The best rate, in GMAC/s, of ONNX Runtime's fp32 MatMul of two ``size`` x ``size``
    matrices on one thread (the fastest of ``runs`` calls): what this core's fp32 matrix unit
    reaches. A convolution runs as such products, so no fp32 engine on this core is faster; it
    bounds what the batch-32 ratio can be."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper
    weights = np.random.default_rng(0).random((size, size), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    feeds = {"x": weights}
    session.run(None, feeds)
    clock = CLOCK[0]
    best = float("inf")
    for _ in range(runs):
        start = clock()
        session.run(None, feeds)
        best = min(best, clock() - start)
    return size ** 3 / max(best, 1e-9) / 1e9


# -- the peer's loop, rebuilt -------------------------------------------------------------------
def peer_loop(model_a, model_b, samples, threshold):
    """Kinnas et al.'s ``double_ps`` loop with the ``maxp`` score (see the module docstring):
    ``samples`` is a list of (C, H, W) tensors; returns the labels (a list of ints)."""
    import torch
    preds = []
    with torch.inference_mode():
        for X in samples:
            X = X.unsqueeze(dim=0)
            logits_a = model_a(X)
            score_a = torch.max(torch.softmax(logits_a, dim=1)).item()
            if score_a < threshold:
                logits_b = model_b(X)
                score_b = torch.max(torch.softmax(logits_b, dim=1)).item()
                if score_b > score_a:
                    pred_label = torch.argmax(logits_b).item()
                else:
                    pred_label = torch.argmax(logits_a).item()
            else:
                pred_label = torch.argmax(logits_a).item()
            preds.append(pred_label)
    return preds


# -- timing -------------------------------------------------------------------------------------
#: the timer: this process's CPU time (other processes' load does not count; one thread for
#: everything timed, so CPU time is the time taken), or wall time with ``--wall``
CLOCK = [time.process_time]


def interleaved(sides, rounds):
    """:func:`benchmarks.common.interleaved` on this benchmark's clock (:data:`CLOCK`)."""
    return common.interleaved(sides, rounds, clock=CLOCK[0])


def batches_of(images, batch):
    return [images[i:i + batch] for i in range(0, len(images), batch)]


def classify_pass(strategy, batches, before=None):
    def run():
        if before is not None:
            before()
        for x in batches:
            strategy.classify(x)
    return run


class Replay(Engine):
    """An engine standing in for ``engine``: while ``recording`` it runs ``engine`` and keeps its
    outputs (and, in ``log``, each call); then it hands them back in the same order
    (``rewind()`` before each pass). A strategy over replays costs its own work plus a list read
    per engine call."""

    def __init__(self, engine, log):
        self.engine, self.log = engine, log
        self.inputs, self.outputs = engine.inputs, engine.outputs
        self.max_batch, self.min_batch = engine.max_batch, engine.min_batch
        self.recorded, self.index, self.recording = [], 0, True

    def _run(self, feeds):
        if self.recording:
            out = self.engine.run_unchecked(feeds)
            self.recorded.append(out)
            self.log.append((self, feeds))
            return out
        out = self.recorded[self.index]
        self.index += 1
        return out

    run_unchecked = _run

    def identity(self):
        return self.engine.identity()


def own_work(make_strategy, engines, batches, rounds, passes, before=None):
    """Seconds per pass outside the engine calls (median of interleaved rounds): the strategy
    ``make_strategy(*replays)`` over replays of ``engines``, less the same engine calls made on
    the replays alone. ``before(strategy)`` runs before each pass (untimed only in that it is
    also what a pass starts with)."""
    log = []
    replays = [Replay(engine, log) for engine in engines]
    strategy = make_strategy(*replays)
    if before is not None:
        before(strategy)
    for x in batches:
        strategy.classify(x)
    for replay in replays:
        replay.recording = False
    calls = [(replay.run_unchecked, feeds) for replay, feeds in log]

    def rewind():
        for replay in replays:
            replay.index = 0

    def strategy_pass():
        for _ in range(passes):
            rewind()
            if before is not None:
                before(strategy)
            for x in batches:
                strategy.classify(x)

    def replays_pass():
        for _ in range(passes):
            rewind()
            for call, feeds in calls:
                call(feeds)
    times = interleaved({"strategy": strategy_pass, "replays": replays_pass}, rounds)
    return (times["strategy"] - times["replays"]) / passes


def cascade_engine_pass(cascade, batches):
    """The engine calls ``cascade`` makes on ``batches``, feeds built now: a pass of them alone."""
    run_a = cascade.first.engine.run_unchecked
    run_b = cascade.second.engine.run_unchecked
    calls = []
    for x in batches:
        cascade.classify(x)
        handed = cascade.last_handoff_index
        calls.append(({"input": x}, {"input": x.take(handed, axis=0)} if len(handed) else None))

    def run():
        for feeds_a, feeds_b in calls:
            run_a(feeds_a)
            if feeds_b is not None:
                run_b(feeds_b)
    return run


def convert_engine_pass(convert, batches):
    run_c = convert.converter.run_unchecked
    run_k = convert.classifier.engine.run_unchecked
    name = convert.converter.outputs[0].name
    calls = [({"input": x}, {"input": np.ascontiguousarray(run_c({"input": x})[name])})
             for x in batches]

    def run():
        for feeds_c, feeds_k in calls:
            run_c(feeds_c)
            run_k(feeds_k)
    return run


def memo_figures(make_memo, strategy, images, rounds, own=None):
    """Batch-1 memo figures over ``strategy`` (exact hit, miss adds, dHash hit, duplicated).
    ``own(wrap, batches, before)``: the own work of ``wrap(strategy)`` over replayed engines
    (the miss figure: the memo's own work on misses less the strategy's)."""
    from calibration.datasets import Dataset
    from toolkit.deploy import duplicate
    from toolkit.strategies.hashing import exact_keys
    unique = np.unique(np.array(exact_keys(images)), return_index=True)[1]
    distinct = images[np.sort(unique)]
    ones = batches_of(distinct, 1)
    exact, dhash = make_memo("exact"), make_memo("dhash")
    for memo in (exact, dhash):
        classify_pass(memo, ones)()  # filled: every later call hits
    stream = duplicate(Dataset(images, None, [str(i) for i in range(10)]), 1.0).images
    stream_ones = batches_of(stream, 1)
    dup, missing = make_memo("exact"), make_memo("exact")
    times = interleaved({
        "strategy": classify_pass(strategy, ones),
        "exact hit": classify_pass(exact, ones),
        "dhash hit": classify_pass(dhash, ones),
        "strategy, duplicated": classify_pass(strategy, stream_ones),
        "memo, duplicated": classify_pass(dup, stream_ones, dup.clear),
        "misses": classify_pass(missing, ones, missing.clear),
        "misses' strategy": classify_pass(missing.inner, ones),
    }, rounds)
    per = {name: seconds / len(ones) * 1e6 for name, seconds in times.items()}
    from toolkit.strategies import Memo
    miss_adds = (own(Memo, ones, Memo.clear) - own(None, ones, None)) / len(ones) * 1e6
    return {"hit_us": per["exact hit"], "dhash_hit_us": per["dhash hit"],
            "miss_adds_us": miss_adds, "strategy_us": per["strategy"],
            "miss_adds_real_us": per["misses"] - per["misses' strategy"],
            "dup_reduction": 1.0 - times["memo, duplicated"] / times["strategy, duplicated"],
            "dup_seconds": times["memo, duplicated"],
            "dup_strategy_seconds": times["strategy, duplicated"]}


# -- the run -----------------------------------------------------------------------------------
def measure(settings, log=print):
    import torch

    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from toolkit.strategies import Cascade, Convert, Memo, MemoConfig, Single
    torch.set_num_threads(1)
    small, large, converter, (train, val, test) = train_pair(settings)
    threshold = choose_threshold(small, large, val)
    images = np.ascontiguousarray(test.images)
    results, notes = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: export(module, os.path.join(folder, name + ".onnx"))
                 for name, module in (("small", small), ("large", large),
                                      ("converter", converter))}

        def engine(name, head=True):
            return OnnxRuntimeEngine(paths[name], threads=1, identity=name,
                                     confidence_head=head and name != "converter")

        def cascade(head=True):
            return Cascade(Single(engine("small", head)), Single(engine("large", head)),
                           threshold, post_check=True)

        fast, host = cascade(True), cascade(False)
        int8 = Cascade(Single(int8_engine(paths["small"], train)),
                       Single(int8_engine(paths["large"], train)), threshold, post_check=True)

        def pair(first, second):
            return Cascade(Single(first), Single(second), threshold, post_check=True)
        assert fast.first.uses_head and not host.first.uses_head
        tensors = [torch.from_numpy(image) for image in images]
        peer_labels = peer_loop(small, large, tensors, threshold)
        ours = np.concatenate([fast.classify(x).labels for x in batches_of(images, 1)])
        notes["agreement"] = float(np.mean(ours == np.array(peer_labels)))
        fast.reset_stats()
        fast.classify(images)
        notes["handoff_rate"] = fast.stats()["handoff_rate"]
        notes["threshold"] = threshold
        log("pair small_cnn -> large_cnn, threshold {:.4f}, handoff rate {:.1%} on {} test images; "
            "labels equal to the peer loop's on {:.2%}".format(
                threshold, notes["handoff_rate"], len(images), notes["agreement"]))
        for batch in (1, 32):
            batched = batches_of(images, batch)
            sides = {
                "cascade": classify_pass(fast, batched),
                "engines only": cascade_engine_pass(fast, batched),
                "cascade, host softmax": classify_pass(host, batched),
                "engines only, host softmax": cascade_engine_pass(host, batched),
            }
            if batch == 1:
                sides["peer loop"] = lambda: peer_loop(small, large, tensors, threshold)
            else:
                sides["cascade, INT8 engines"] = classify_pass(int8, batched)
            times = interleaved(sides, settings.rounds)
            if batch == 1:
                peer = times["peer loop"]
            calls = len(batched)
            own = own_work(pair, [fast.first.engine, fast.second.engine], batched,
                           settings.rounds, settings.passes)
            own_host = own_work(pair, [host.first.engine, host.second.engine], batched,
                                settings.rounds, settings.passes)
            key = "b{}".format(batch)
            results["cascade_own_us_" + key] = own / calls * 1e6
            results["cascade_own_share_" + key] = own / times["engines only"]
            results["host_own_us_" + key] = own_host / calls * 1e6
            results["host_own_share_" + key] = own_host / times["engines only, host softmax"]
            results["peer_speedup_" + key] = peer / times["cascade"]
            results["engines_peer_speedup_" + key] = peer / times["engines only"]
            results["host_peer_speedup_" + key] = peer / times["cascade, host softmax"]
            if batch != 1:
                results["int8_peer_speedup_" + key] = peer / times["cascade, INT8 engines"]
            for name, seconds in sorted(times.items()):
                log("  batch {:>2}  {:<28} {:9.2f} us per sample".format(
                    batch, name, seconds / len(images) * 1e6))
        fp32_labels, int8_labels = fast.classify(images).labels, int8.classify(images).labels
        results["int8_agreement"] = float(np.mean(fp32_labels == int8_labels))
        results["int8_accuracy_points"] = 100.0 * float(np.mean(int8_labels == test.labels))
        results["fp32_accuracy_points"] = 100.0 * float(np.mean(fp32_labels == test.labels))
        results["large_macs_per_image"] = macs_per_image(large)
        results["small_macs_per_image"] = macs_per_image(small)
        results["large_engine_us_per_image_b32"] = engine_us_per_image(fast.second.engine,
                                                                       images, settings.rounds)
        results["matmul_gmacs"] = matmul_gmacs()
        results["peer_us"] = peer / len(images) * 1e6
        results["handoff_rate"] = notes["handoff_rate"]

        def own_pair(wrap, batches, before):
            return own_work(lambda a, b: wrap(pair(a, b)) if wrap else pair(a, b),
                            [fast.first.engine, fast.second.engine], batches, settings.rounds,
                            settings.passes, before)
        memo = memo_figures(lambda mode: Memo(cascade(True), MemoConfig(mode)), fast, images,
                            settings.rounds, own_pair)
        for name in ("hit_us", "miss_adds_us", "dhash_hit_us", "dup_reduction"):
            results["memo_" + ("dup_reduction_b1" if name == "dup_reduction" else
                               name + "_b1")] = memo[name]
        results["memo_strategy_us_b1"] = memo["strategy_us"]
        results["memo_miss_adds_real_us_b1"] = memo["miss_adds_real_us"]

        def converted(head=True):
            return Convert(engine("converter"), Single(engine("small", head)))
        path = converted()
        assert path.classifier.uses_head
        ones = batches_of(images, 1)
        times = interleaved({"convert": classify_pass(path, ones),
                             "engines only": convert_engine_pass(path, ones),
                             "convert, host softmax": classify_pass(converted(False), ones)},
                            settings.rounds)
        own = own_work(lambda c, k: Convert(c, Single(k)),
                       [path.converter, path.classifier.engine], ones, settings.rounds,
                       settings.passes)
        results["convert_own_us_b1"] = own / len(ones) * 1e6
        results["convert_host_us_b1"] = times["convert, host softmax"] / len(ones) * 1e6
        results["convert_us_b1"] = times["convert"] / len(ones) * 1e6
        def own_convert(wrap, batches, before):
            def make(c, k):
                return wrap(Convert(c, Single(k))) if wrap else Convert(c, Single(k))
            return own_work(make, [path.converter, path.classifier.engine], batches,
                            settings.rounds, settings.passes, before)
        memo = memo_figures(lambda mode: Memo(converted(), MemoConfig(mode)), path, images,
                            settings.rounds, own_convert)
        for name in ("hit_us", "miss_adds_us", "dhash_hit_us", "dup_reduction"):
            results["convert_memo_" + ("dup_reduction_b1" if name == "dup_reduction" else
                                       name + "_b1")] = memo[name]
        results["convert_memo_strategy_us_b1"] = memo["strategy_us"]
        results["convert_memo_miss_adds_real_us_b1"] = memo["miss_adds_real_us"]
    return results, notes


def verdict(relation, bound, value):
    ok = value <= bound if relation == "<=" else value >= bound
    return "met" if ok else "NOT met"


def report(results, log=print):
    log("")
    log("{:<34} {:>10}  {:<10} {}".format("aim", "measured", "bound", "verdict"))
    for key, relation, bound, what in AIMS:
        value = results[key]
        log("{:<34} {:>10.3f}  {} {:<7g} {:<8} {}".format(
            key, value, relation, bound, verdict(relation, bound, value), what))
    log("")
    log("without the confidence head (host softmax; no aims): own work {:.2f} us per call at "
        "batch 1 ({:.1%} of engine time), {:.1%} at batch 32; vs the peer {:.1f}x at batch 1, "
        "{:.1f}x at batch 32; CBNet path {:.2f} us per call".format(
            results["host_own_us_b1"], results["host_own_share_b1"],
            results["host_own_share_b32"], results["host_peer_speedup_b1"],
            results["host_peer_speedup_b32"], results["convert_host_us_b1"]))
    log("ceiling of the peer ratios on these engines (the engine calls alone, no strategy "
        "work): {:.1f}x at batch 1, {:.1f}x at batch 32".format(
            results["engines_peer_speedup_b1"], results["engines_peer_speedup_b32"]))
    macs = results["large_macs_per_image"]
    log("beyond the aims, the INT8 engines (the toolkit's INT8 build of the same models, this "
        "CPU's form): cascade at batch 32 {:.1f}x the peer; labels equal to the fp32 cascade's "
        "on {:.2%}, test accuracy {:.2f}% (fp32 {:.2f}%)".format(
            results["int8_peer_speedup_b32"], results["int8_agreement"],
            results["int8_accuracy_points"], results["fp32_accuracy_points"]))
    log("why fp32 stops short of 40x at batch 32: large_cnn is {:.2f} MMACs per image and its "
        "fp32 engine takes {:.1f} us per image at batch 32, {:.1f} GMAC/s on one core".format(
            macs / 1e6, results["large_engine_us_per_image_b32"],
            macs / results["large_engine_us_per_image_b32"] / 1e3))
    log(floor_of_peer_ratio(results))
    for prefix, name in (("memo_", "cascade"), ("convert_memo_", "CBNet path")):
        log(floor_of_memo(results, prefix, name))
    log("a memo miss on the real engines (its misses less its own strategy alone, interleaved: "
        "the memo's work plus what the engine calls between cost it in caches; noisier than the "
        "replays the aim uses): adds {:.2f} us (cascade), {:.2f} us (CBNet path)".format(
            results["memo_miss_adds_real_us_b1"], results["convert_memo_miss_adds_real_us_b1"]))
    log("with it: own work {:.2f} us per call at batch 32 ({:.1%} of engine time); batch 1: "
        "{:.1%} of engine time; CBNet path {:.2f} us per call".format(
            results["cascade_own_us_b32"], results["cascade_own_share_b32"],
            results["cascade_own_share_b1"], results["convert_us_b1"]))


def floor_of_peer_ratio(results):
    """The line saying what 40x at batch 32 needs per sample, and what the engines' arithmetic
    alone (small_cnn on every sample, large_cnn on those handed off) takes at this core's best
    fp32 matmul rate, with no other work at all."""
    needed = results["peer_us"] / 40.0
    macs = (results["small_macs_per_image"]
            + results["handoff_rate"] * results["large_macs_per_image"])
    floor = macs / (results["matmul_gmacs"] * 1e3)
    return ("what 40x at batch 32 needs: at most {:.2f} us per sample (the peer's {:.1f} / 40); "
            "the engines' arithmetic alone ({:.2f} MMACs per sample: small_cnn on each, large_cnn "
            "on the {:.1%} handed off) takes at least {:.2f} us per sample at this core's best "
            "fp32 matmul rate ({:.1f} GMAC/s, ONNX Runtime, one thread): {}".format(
                needed, results["peer_us"], macs / 1e6, results["handoff_rate"], floor,
                results["matmul_gmacs"],
                "out of reach in fp32 on this core" if floor > needed else "within reach"))


def floor_of_memo(results, prefix, name):
    """The line saying what 45% on the duplicated protocol needs of the memo: half the stream
    misses (the strategy's time c plus the miss's m) and half hits (h), so the reduction is
    0.5 - (m + h) / (2 c), and 45% needs m + h <= 0.1 c."""
    strategy = results[prefix + "strategy_us_b1"]
    spent = results[prefix + "hit_us_b1"] + results[prefix + "miss_adds_us_b1"]
    return ("what 45% on the duplicated protocol needs ({}): a miss's added work m plus a hit h "
            "at most 0.1 c = {:.2f} us (c = {:.2f} us, the strategy alone per call); measured "
            "m + h = {:.2f} us, so at best 0.5 - (m + h) / (2 c) = {:.1%}".format(
                name, 0.1 * strategy, strategy, spent, 0.5 - spent / (2.0 * strategy)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 training epochs, 128 test images, 3 rounds (a smoke run)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per figure (default 9; --quick 3)")
    parser.add_argument("--wall", action="store_true",
                        help="time by the wall clock (default: this process's CPU time, which "
                             "other processes' load does not inflate)")
    args = parser.parse_args(argv)
    CLOCK[0] = time.perf_counter if args.wall else time.process_time
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    settings = Settings(args.quick, args.rounds)
    print("ONNX Runtime CPU, 1 thread; median of {} interleaved rounds; {} microseconds per "
          "sample (at batch 1, per call)".format(
              settings.rounds, "wall" if args.wall else "CPU"), flush=True)
    results, _ = measure(settings)
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
