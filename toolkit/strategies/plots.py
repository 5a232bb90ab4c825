"""PNG plots of threshold curves (matplotlib with the Agg backend, imported only when plotting)."""
import io

from basics.fileio import write_bytes_atomic
from basics.lazy import lazy_import


def _pyplot():
    matplotlib = lazy_import("matplotlib", "plotting threshold curves")
    matplotlib.use("Agg")
    return lazy_import("matplotlib.pyplot", "plotting threshold curves")


def plot_curves(path, curves, marks=(), title=None):
    """Write a PNG: accuracy vs expected cost (left) and accuracy/handoff rate vs threshold (right).

    ``curves``: ``[(label, ThresholdCurve)]``; ``marks``: ``[(label, ThresholdChoice)]`` drawn as
    points. The pair's single models are drawn as squares on the left panel (the first curve's).
    """
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for number, (label, curve) in enumerate(curves):
        color = "C{}".format(number % 10)
        left.plot(curve.expected_cost, curve.accuracy, label=label, linewidth=1.2, color=color)
        right.plot(curve.thresholds, curve.accuracy, label="accuracy " + label, linewidth=1.2,
                   color=color)
        right.plot(curve.thresholds, curve.handoff_rate, linestyle="--", linewidth=1.0,
                   color=color, label="handoff rate " + label)
    if curves:
        first = curves[0][1]
        left.scatter([first.cost_first, first.cost_second],
                     [first.accuracy_first, first.accuracy_second], marker="s", color="black",
                     zorder=3, label="single models")
    for label, choice in marks:
        left.scatter([choice.expected_cost], [choice.accuracy], zorder=4, label=label,
                     marker="*", s=90)
        right.axvline(choice.threshold, color="grey", linewidth=0.8, linestyle=":")
    unit = curves[0][1].cost_unit if curves else ""
    left.set_xlabel("expected cost ({})".format(unit))
    left.set_ylabel("accuracy")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.set_xlabel("threshold")
    right.set_ylabel("accuracy / handoff rate")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
    return path
