"""The demo's report: ``report.json`` (everything), ``report.md`` (one table per data set and
protocol, the shortfalls against the large model, the plots) and the same table as text."""
import os

from basics.fileio import write_json_atomic, write_text_atomic

COLUMNS = ("strategy", "accuracy [95% CI]", "vs large, points [95% CI]", "p50 ms", "p95 ms",
           "samples/s", "energy/inference", "handoff", "memo hits", "speed-up", "energy saved")


def energy_note(energy):
    """One line saying what the energy column is."""
    if energy["measured"]:
        return "energy: MEASURED with {} ({})".format(energy["source"], energy["unit"])
    return ("energy: ESTIMATE, not measured ({}): the analytical energy model's expected energy "
            "per inference in {}".format(energy["why_not"], energy["unit"]))


def _pct(value):
    return "-" if value is None else "{:.1%}".format(value)


def _rate(value):
    return "-" if value is None else "{:.3f}".format(value)


def _gap(gap):
    low, high = gap["ci95"]
    return "{:+.2f} [{:+.2f}, {:+.2f}]{}".format(100 * gap["gap"], 100 * low, 100 * high,
                                                 "*" if gap["significant"] else "")


def row_cells(row):
    """The table cells of one strategy row."""
    low, high = row["accuracy_ci95"]
    energy = "n/a" if row["energy_per_inference"] is None else "{:.4g}".format(
        row["energy_per_inference"])
    return [row["strategy"], "{:.2%} [{:.1%}, {:.1%}]".format(row["accuracy"], low, high),
            "-" if row["key"] == "large" else _gap(row["gap_vs_large"]),
            "{:.3f}".format(row["latency_p50_ms"]), "{:.3f}".format(row["latency_p95_ms"]),
            "{:.0f}".format(row["throughput_per_s"]), energy, _rate(row["handoff_rate"]),
            _rate(row["memo_hit_rate"]), "{:.2f}x".format(row["speedup_vs_large"]),
            _pct(row["energy_saving_vs_large"])]


def shortfalls(rows):
    """One sentence per strategy less accurate than the large model: by how much, the interval,
    and whether it is significant (exact McNemar test, 5%)."""
    out = []
    for row in rows[1:]:
        gap = row["gap_vs_large"]
        if gap["gap"] >= 0:
            continue
        low, high = gap["ci95"]
        out.append("{} is {:.2f} points below the large model (95% CI {:+.2f} to {:+.2f} points; "
                   "{} vs {} samples only one of the two gets right, McNemar p = {:.3g}: {})"
                   .format(row["strategy"], -100 * gap["gap"], 100 * low, 100 * high,
                           gap["only_other_right"], gap["only_base_right"], gap["mcnemar_p"],
                           "significant" if gap["significant"] else "not significant"))
    return out


def text_table(title, rows):
    """Fixed-width lines of one table."""
    cells = [list(COLUMNS)] + [row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = [title]
    for cell in cells:
        lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(cell, widths))))
    return lines


def markdown_table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(row_cells(row)) + " |")
    return lines


def tables(report):
    """``[(title, rows)]`` in report order."""
    out = []
    for name, result in report["datasets"].items():
        for protocol in ("test", "duplicated"):
            part = result["protocols"][protocol]
            out.append(("{} - {} ({} samples, batch {})".format(
                name, "test split" if protocol == "test" else
                "duplicated protocol (every test image twice, shuffled)", part["samples"],
                report["config"]["max_batch"]), part["rows"]))
    return out


def print_lines(report):
    """The text the demo prints at the end."""
    lines = []
    for title, rows in tables(report):
        lines.extend(text_table(title, rows))
        lines.extend("  ! " + s for s in shortfalls(rows))
    lines.append(energy_note(report["energy"]))
    lines.append("vs large: accuracy gap in points, paired over the same samples; * = significant "
                 "(McNemar, 5%)")
    return lines


def markdown(report):
    """``report.md``."""
    out = ["# Demo report", "",
           "Made by `{}` in {:.0f} s (stages reused: {}).".format(
               report["command"], report["seconds"], ", ".join(report["stages"]["reused"])
               or "none"), "",
           energy_note(report["energy"]) + ".", "",
           "Accuracy: top-1 with its 95% Wilson interval. *vs large*: the accuracy gap to the "
           "large model in points on the same samples, with a 95% paired bootstrap interval "
           "(copies of one image resampled together); `*` marks a gap the exact McNemar test "
           "finds significant at 5% (over the distinct test images: copies of one image count "
           "once). Latency: per batch, each batch's median over {} runs. "
           "Speed-up and energy saved: against the large model.".format(
               report["config"]["repeats"]), ""]
    for name, result in report["datasets"].items():
        selection = result["selection"]
        out.extend(["## {}".format(name), "",
                    "Pair chosen on the validation split ({} rule of `toolkit pair select`): "
                    "`{}` -> `{}` at threshold {:.4f} (validation accuracy {:.2%}, handoff rate "
                    "{:.1%}). Best single small model: `{}`.".format(
                        selection["rule"], selection["first"], selection["second"],
                        selection["threshold"], selection["val_accuracy"],
                        selection["val_handoff_rate"], selection["best_small"]), ""])
        for protocol in ("test", "duplicated"):
            part = result["protocols"][protocol]
            out.append("### {} ({} samples)".format(
                "Test split" if protocol == "test" else
                "Duplicated protocol: every test image twice, shuffled", part["samples"]))
            out.append("")
            out.extend(markdown_table(part["rows"]))
            out.append("")
            out.extend("- " + s for s in shortfalls(part["rows"]))
            out.append("")
        for plot in result.get("plots", []):
            out.extend(["![{}]({})".format(plot["title"], plot["file"]), ""])
    return "\n".join(out).rstrip("\n") + "\n"


def write(report, folder):
    """Write ``report.json`` and ``report.md`` into ``folder``; returns their paths."""
    json_path = os.path.join(folder, "report.json")
    md_path = os.path.join(folder, "report.md")
    write_json_atomic(json_path, report)
    write_text_atomic(md_path, markdown(report))
    return json_path, md_path
