"""Run every compared strategy of one data set on the test split and on the duplicated protocol
(the pair paper's: the split, then a shuffled copy of it), with power measured where a source
exists and the analytical estimate otherwise."""
import os

import numpy as np

from basics.stats import paired_gap, wilson_interval

ROW_LABELS = (("large", "large model"), ("best_small", "best single small model"),
              ("cascade", "pair cascade"), ("memo_cascade", "memo + pair cascade"),
              ("cbnet", "CBNet (converter -> light)"), ("int8", "INT8 large model"),
              ("pruned", "pruned large model"))
PROTOCOLS = ("test", "duplicated")


def duplicated(test, fraction, seed):
    """``(data, clusters)``: the duplicated protocol of ``test`` and, per sample, the index of the
    test image it shows (copies of one image are one cluster in the intervals)."""
    from toolkit import deploy
    data = deploy.duplicate(test, fraction, "none", seed)
    picked = deploy.duplicated_indices(len(test), fraction, seed)
    return data, np.concatenate([np.arange(len(test)), picked])


def compare(prepared, config, meter, log, windows=None):
    """{protocol: {"data", "samples", "rows": [...]}, "curve": ...} for one prepared data
    set. ``windows`` (a list) receives ``(label, start, end)`` of every measured run."""
    test = prepared.data.test
    out = {}
    for protocol in PROTOCOLS:
        if protocol == "test":
            data, clusters = test, np.arange(len(test))
        else:
            data, clusters = duplicated(test, config.duplicate, config.seed)
        rows = _run_rows(prepared.specs, data, config, meter, windows,
                         "{} {}".format(prepared.name, protocol))
        _add_comparisons(rows, clusters)
        out[protocol] = {"data": data.name, "samples": len(data), "rows": rows}
        log("  {} on {}: {} samples, {} strategies x {} runs".format(
            prepared.name, protocol, len(data), len(rows), config.repeats))
    out["curve"] = threshold_points(prepared, test, config, meter)
    return out


def _run_rows(specs, data, config, meter, windows, where):
    from toolkit.deployment import load_spec
    from toolkit.running import run_deployment
    runs = {key: [] for key, _ in ROW_LABELS}
    for _ in range(config.repeats):  # interleaved: a slow spell hits every strategy alike
        for key, _ in ROW_LABELS:
            with load_spec(specs[key]) as deployment:
                report = run_deployment(deployment, data, batch_size=config.max_batch,
                                        meter=meter if meter.measuring else None)
                runs[key].append((report, _energy(report, deployment)))
            if meter.measuring and windows is not None and meter.windows:
                window = meter.windows[-1]
                windows.append(("{}: {}".format(where, key), window.start, window.end))
    rows = []
    for key, label in ROW_LABELS:
        report = runs[key][-1][0]
        batch_ms = np.median(np.stack([r.batch_ms for r, _ in runs[key]]), axis=0)
        measured = [e["value"] for _, e in runs[key] if e["measured"]]
        estimated = [e["value"] for _, e in runs[key] if not e["measured"] and e["value"]
                     is not None]
        energy = float(np.median(measured)) if measured else (
            float(np.median(estimated)) if estimated else None)
        right = report.labels == report.true_labels
        low, high = wilson_interval(int(right.sum()), len(right))
        rows.append({
            "key": key, "strategy": label, "spec": specs[key], "describe": report.strategy,
            "samples": report.samples, "accuracy": report.accuracy,
            "accuracy_ci95": [low, high], "right": right,
            "latency_p50_ms": float(np.percentile(batch_ms, 50)),
            "latency_p95_ms": float(np.percentile(batch_ms, 95)),
            "ms_per_sample": float(batch_ms.sum()) / report.samples,
            "throughput_per_s": report.samples / (float(batch_ms.sum()) / 1000.0),
            "handoff_rate": report.stats.get("handoff_rate"),
            "memo_hit_rate": report.stats.get("memo_hit_rate"),
            "energy_per_inference": energy, "energy_measured": bool(measured),
            "energy_unit": runs[key][-1][1]["unit"],
            "energy_detail": runs[key][-1][1]["detail"]})
    return rows


def _energy(report, deployment):
    """This run's energy per inference: measured (above idle when known) or the estimate."""
    from toolkit.energy_estimate import estimate_deployment, try_estimate
    windows = (report.energy or {}).get("windows") or []
    if windows and windows[-1].get("measured"):
        window = windows[-1]
        above = window.get("mj_per_inference_above_idle")
        return {"measured": True, "value": above if above is not None
                else window["mj_per_inference"], "unit": "mJ" + (" above idle" if above
                                                                 is not None else ""),
                "detail": {"flags": window.get("flags", []),
                           "mj_per_inference_total": window["mj_per_inference"]}}
    estimate, why_not = try_estimate(estimate_deployment, deployment)
    if estimate is None:
        return {"measured": False, "value": None, "unit": None,
                "detail": {"estimate_unavailable": why_not}}
    return {"measured": False, "value": estimate.value, "unit": estimate.unit,
            "detail": {"formula": estimate.formula}}


def _add_comparisons(rows, clusters):
    """Speed-up, energy saving and the accuracy gap (paired, clustered) against the large model."""
    base = rows[0]
    for row in rows:
        row["speedup_vs_large"] = base["ms_per_sample"] / row["ms_per_sample"]
        value, reference = row["energy_per_inference"], base["energy_per_inference"]
        row["energy_saving_vs_large"] = (1.0 - value / reference) if value is not None and \
            reference else None
        gap = paired_gap(base["right"], row["right"], clusters=clusters, test_clusters=True)
        gap["significant"] = gap["mcnemar_p"] < 0.05
        row["gap_vs_large"] = gap
    for row in rows:
        row["right"] = None  # per-sample vectors stay out of the report


def threshold_points(prepared, test, config, meter):
    """Accuracy and energy per inference of the chosen pair at every threshold on the test
    split, with the chosen threshold; energies in the table's unit (each model measured alone,
    or the energy model's estimate)."""
    from toolkit import deploy
    from toolkit.deployment import load_spec
    from toolkit.running import run_deployment
    from toolkit.spec_writing import write_spec
    from toolkit.strategies import Single
    from toolkit.strategies.thresholds import threshold_curve
    selection = prepared.selection
    select_dir = os.path.dirname(os.path.abspath(prepared.specs["large"]))
    probs, energies, unit = [], [], None
    for name in (selection["first"], selection["second"]):
        spec = os.path.join(select_dir, name + ".single.yaml")
        engine = os.path.join(prepared.folder, "engines", name + ".engine")
        write_spec(spec, {"version": 1, "engines": {name: os.path.relpath(
            engine, select_dir)}, "strategy": name})
        with load_spec(spec) as deployment:
            report = run_deployment(deployment, test, batch_size=config.max_batch,
                                    meter=meter if meter.measuring else None)
            energy = _energy(report, deployment)
            single = deployment.strategy
            assert isinstance(single, Single)
            images = deploy.prepare_images(deployment, test.images)
            probs.append(np.concatenate([single.classify(images[i:i + config.max_batch]).probs
                                         for i in range(0, len(images), config.max_batch)]))
        energies.append(energy["value"])
        unit = energy["unit"]
    if any(e is None for e in energies):
        return None
    curve = threshold_curve(probs[0], probs[1], test.labels, cost_first=energies[0],
                            cost_second=energies[1], cost_unit=unit or "")
    step = max(1, len(curve.thresholds) // 200)
    chosen = int(np.argmin(np.abs(curve.thresholds - selection["threshold"])))
    return {"first": selection["first"], "second": selection["second"], "unit": unit,
            "thresholds": [float(v) for v in curve.thresholds[::step]],
            "accuracy": [float(v) for v in curve.accuracy[::step]],
            "energy": [float(v) for v in curve.expected_cost[::step]],
            "chosen": {"threshold": selection["threshold"],
                       "accuracy": float(curve.accuracy[chosen]),
                       "energy": float(curve.expected_cost[chosen])}}

