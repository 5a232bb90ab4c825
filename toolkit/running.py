"""Running a loaded deployment on a data set: batches timed one by one, the strategy's counters,
energy when a meter is given -> a :class:`RunReport` (accuracy, latency, throughput, the
predictions as CSV/JSON); and :func:`engine_images`, a data set's images made one engine's input
(what ``toolkit pair`` and ``toolkit demo`` run single models on).
"""
import csv
import io
import time

import numpy as np

from basics.errors import InputError, InternalError
from basics.fileio import write_json_atomic, write_text_atomic
from basics.progress import progress_bar
from basics.stats import latency_summary
from toolkit import deploy


def engine_images(engine, images):
    """Float32 NCHW data-set images -> ``engine``'s input: its metadata's preprocessing (none
    without metadata), checked against its input shape with a one-line error."""
    meta = getattr(engine, "metadata", None)
    prep = None if meta is None else meta.preprocessing
    out = images if prep is None or prep.is_identity else prep.apply(images)
    want = engine.input.shape[1:]
    if any(w not in (-1, g) for w, g in zip(want, out.shape[1:])):
        raise InputError("the data's images are {} but the model takes {}".format(
            "x".join(map(str, out.shape[1:])), "x".join(map(str, want))))
    return np.ascontiguousarray(out, dtype=np.float32)


class RunReport(object):
    """What a run measured: accuracy (when labels exist), latency per batch and per sample,
    throughput, the strategy's counters (handoffs, memo hits), energy (when a meter was given)
    and the predictions."""

    def __init__(self, name, strategy, data_name, batch_size, labels, confidence, true_labels,
                 sources, class_names, batch_ms, batch_sizes, stats, energy=None,
                 energy_lines=None):
        self.name = name
        self.strategy = strategy
        self.data_name = data_name
        self.batch_size = batch_size
        self.labels = labels
        self.confidence = confidence
        self.true_labels = true_labels
        self.sources = sources
        self.class_names = class_names
        self.batch_ms = np.asarray(batch_ms, dtype=np.float64)
        self.batch_sizes = np.asarray(batch_sizes, dtype=np.int64)
        self.stats = stats
        self.energy = energy
        self.energy_lines = energy_lines or []

    @property
    def samples(self):
        return int(len(self.labels))

    @property
    def accuracy(self):
        if self.true_labels is None:
            return None
        return float(np.mean(self.labels == self.true_labels))

    @property
    def total_s(self):
        return float(self.batch_ms.sum()) / 1000.0

    @property
    def throughput_per_s(self):
        return self.samples / self.total_s if self.total_s > 0 else float("inf")

    def latency_batch(self):
        return latency_summary(self.batch_ms, self.batch_size)

    def latency_sample(self):
        return latency_summary(self.batch_ms / self.batch_sizes, 1)

    def to_dict(self):
        stats = dict(self.stats)
        return {"deployment": self.name, "strategy": self.strategy, "data": self.data_name,
                "samples": self.samples, "batch_size": self.batch_size, "accuracy": self.accuracy,
                "total_s": self.total_s, "throughput_per_s": self.throughput_per_s,
                "latency_per_batch": self.latency_batch(),
                "latency_per_sample": self.latency_sample(),
                "handoff_rate": stats.get("handoff_rate"),
                "memo_hit_rate": stats.get("memo_hit_rate"), "counters": stats,
                "energy": self.energy}

    def lines(self):
        out = ["{} on {}: {} samples, batch {}".format(self.strategy, self.data_name, self.samples,
                                                        self.batch_size)]
        if self.accuracy is not None:
            out.append("accuracy            {:.4f}".format(self.accuracy))
        per_batch, per_sample = self.latency_batch(), self.latency_sample()
        out.append("latency per batch   median {:.3f} ms  p95 {:.3f} ms  p99 {:.3f} ms".format(
            per_batch["latency_median_ms"], per_batch["latency_p95_ms"],
            per_batch["latency_p99_ms"]))
        out.append("latency per sample  median {:.4f} ms  p95 {:.4f} ms  mean {:.4f} ms".format(
            per_sample["latency_median_ms"], per_sample["latency_p95_ms"],
            per_sample["latency_mean_ms"]))
        out.append("throughput          {:.1f} samples/s ({:.3f} s in all)".format(
            self.throughput_per_s, self.total_s))
        if "handoff_rate" in self.stats:
            out.append("handoff rate        {:.3f} ({} of {} samples the pair ran)".format(
                self.stats["handoff_rate"], self.stats.get("handoffs", 0),
                self.stats.get("inner_samples", self.stats.get("samples", 0))))
        if "memo_hit_rate" in self.stats:
            out.append("memo hit rate       {:.3f} ({} hits, {} entries, {} evictions)".format(
                self.stats["memo_hit_rate"], self.stats["memo_hits"], self.stats["memo_entries"],
                self.stats["memo_evictions"]))
        out.extend(self.energy_lines)
        return out

    def predictions_csv(self):
        """CSV text: index, [source,] label, [class,] confidence, true_label."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        with_source = self.sources is not None
        with_names = bool(self.class_names)
        header = ["index"] + (["source"] if with_source else []) + ["label"] + (
            ["class_name"] if with_names else []) + ["confidence", "true_label"]
        writer.writerow(header)
        for i in range(self.samples):
            label = int(self.labels[i])
            row = [i] + ([self.sources[i]] if with_source else []) + [label]
            if with_names:
                row.append(self.class_names[label] if label < len(self.class_names) else label)
            row.append("{:.6f}".format(float(self.confidence[i])))
            row.append("" if self.true_labels is None else int(self.true_labels[i]))
            writer.writerow(row)
        return buffer.getvalue()

    def write_predictions(self, path):
        write_text_atomic(path, self.predictions_csv())

    def write_json(self, path):
        write_json_atomic(path, self.to_dict())


def run_deployment(deployment, data=None, batch_size=32, meter=None, files=None, progress=False):
    """Run ``data`` (a :class:`calibration.datasets.Dataset`) or ``files`` (a :class:`FileSet`,
    classified through the memo's encoded path: files hashed before decoding) through the
    deployment in batches of ``batch_size`` -> :class:`RunReport`.

    Every engine is warmed up first (3 untimed calls, not memoized); the strategy's counters are
    reset.
    ``meter``: a started ``toolkit.power.meter.PowerMeter`` (or None): the timed run is its window
    ``"run"`` and its report is included.
    """
    if (data is None) == (files is None):
        raise InternalError("give either data or files to run")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise InputError("the batch size must be at least 1, got {}".format(batch_size))
    source = data if files is None else files
    total = len(source)
    if total == 0:
        raise InputError("{}: the data set is empty".format(getattr(source, "name", "data")))
    strategy = deployment.strategy
    from calibration.datasets import check_labels_fit
    check_labels_fit(source.labels, strategy.num_classes, getattr(source, "name", "data"))
    if files is not None:
        decode = deploy.make_decoder(deployment)
        warm = np.stack([decode(files.blobs[0])])

        def run_batch(start):
            return strategy.classify_encoded(files.blobs[start:start + batch_size], decode)
    else:
        warm = deploy.prepare_images(deployment, data.images[:min(batch_size, total)])

        def run_batch(start):
            return strategy.classify(deploy.prepare_images(
                deployment, data.images[start:start + batch_size]))
    for _ in range(3):
        strategy.warmup(warm)
    strategy.reset_stats()
    labels = np.empty(total, dtype=np.int64)
    confidence = np.empty(total, dtype=np.float32)
    batch_ms, batch_sizes = [], []
    starts = range(0, total, batch_size)
    bar = progress_bar(len(starts), "run", "batch", progress)

    def timed_loop():
        clock = time.perf_counter
        for start in starts:
            begin = clock()
            result = run_batch(start)
            batch_ms.append((clock() - begin) * 1000.0)
            batch_sizes.append(len(result))
            labels[start:start + len(result)] = result.labels
            confidence[start:start + len(result)] = result.confidence
            bar.update(1)
    energy, energy_lines = None, None
    try:
        if meter is None:
            timed_loop()
        else:
            with meter.window("run") as window:
                timed_loop()
                window.inferences = total
            report = meter.report()
            energy, energy_lines = report.to_dict(), list(report.lines())
    finally:
        bar.close()
    class_names = deployment.class_names or (source.class_names or None)
    return RunReport(deployment.name, deployment.describe(), source.name, batch_size, labels,
                     confidence, source.labels, getattr(source, "sources", None), class_names,
                     batch_ms, batch_sizes, strategy.stats(), energy, energy_lines)
