"""The demo's PNGs (matplotlib, Agg): accuracy against energy per inference, and the measured
power trace with each strategy's window shaded."""
import io

from basics.fileio import write_bytes_atomic
from basics.lazy import lazy_import

MARKERS = {"large": "s", "best_small": "D", "cascade": "o", "memo_cascade": "P", "cbnet": "^",
           "int8": "v", "pruned": "X"}


def _pyplot():
    matplotlib = lazy_import("matplotlib", "the demo's plots")
    matplotlib.use("Agg")
    return lazy_import("matplotlib.pyplot", "the demo's plots")


def _save(figure, plt, path, layout=True):
    buffer = io.BytesIO()
    if layout:
        figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def accuracy_vs_energy(path, name, result, energy):
    """One panel per protocol: every strategy as a point (with its accuracy interval), and on the
    test split the pair's curve over every threshold with the chosen threshold starred."""
    plt = _pyplot()
    protocols = ("test", "duplicated")
    figure, axes = plt.subplots(1, len(protocols), figsize=(12, 5.4), sharey=True)
    unit = "energy per inference: {}".format(
        energy["unit"] + " (measured)" if energy["measured"] else
        "ESTIMATE, energy-model units (one 16-bit MAC = 1)")
    for axis, protocol in zip(axes, protocols):
        rows = result["protocols"][protocol]["rows"]
        curve = result.get("curve") if protocol == "test" else None
        if curve:
            axis.plot(curve["energy"], curve["accuracy"], color="0.6", linewidth=1.0, zorder=1,
                      label="pair {} -> {}, every threshold".format(curve["first"],
                                                                   curve["second"]))
            axis.scatter([curve["chosen"]["energy"]], [curve["chosen"]["accuracy"]], marker="*",
                         s=220, color="gold", edgecolor="black", zorder=4,
                         label="chosen threshold {:.3f}".format(curve["chosen"]["threshold"]))
        for number, row in enumerate(rows):
            if row["energy_per_inference"] is None:
                continue
            low, high = row["accuracy_ci95"]
            axis.errorbar([row["energy_per_inference"]], [row["accuracy"]],
                          yerr=[[row["accuracy"] - low], [high - row["accuracy"]]],
                          fmt=MARKERS.get(row["key"], "o"), color="C{}".format(number),
                          markersize=8, capsize=3, zorder=3, label=row["strategy"])
        axis.set_xscale("log")
        axis.set_xlabel(unit, fontsize=9)
        axis.set_title("{}: {}".format(name, "test split" if protocol == "test" else
                                       "duplicated protocol"))
        axis.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("top-1 accuracy (95% interval)")
    handles, labels = [], []
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    return _save(figure, plt, path, layout=False)


def power_trace(path, meter, windows):
    """Total power over time with each named window (``[(label, start, end)]``) shaded."""
    import numpy as np
    plt = _pyplot()
    trace = meter.trace
    figure, axis = plt.subplots(figsize=(12, 3.8))
    total = None
    for rail in meter.source.policy.total_rails:
        t, power = trace.power_series(rail)
        total = power if total is None else total + np.interp(t, *trace.power_series(rail))
    t0 = meter.t0
    axis.plot(np.asarray(t) - t0, total, color="black", linewidth=0.8, label="total power")
    for number, (label, start, end) in enumerate(windows):
        axis.axvspan(start - t0, end - t0, alpha=0.25, color="C{}".format(number % 10),
                     label=label)
    if meter.idle:
        axis.axhline(meter.idle["power_mw"], color="grey", linestyle=":", label="idle")
    axis.set_xlabel("time (s)")
    axis.set_ylabel("power (mW)")
    axis.grid(alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axis.legend(unique.values(), unique.keys(), fontsize=7, ncol=4, loc="upper right")
    return _save(figure, plt, path)
