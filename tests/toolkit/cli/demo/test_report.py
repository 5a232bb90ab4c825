"""The demo report's tables and shortfall sentences, from a hand-made report."""
from toolkit.cli.demo import report


def _row(key, accuracy, gap, p, only_base=0, only_other=0, energy=10.0):
    return {"key": key, "strategy": key.replace("_", " "), "accuracy": accuracy,
            "accuracy_ci95": [accuracy - 0.02, accuracy + 0.01], "latency_p50_ms": 1.0,
            "latency_p95_ms": 2.0, "throughput_per_s": 1000.0, "energy_per_inference": energy,
            "handoff_rate": None, "memo_hit_rate": None, "speedup_vs_large": 2.0,
            "energy_saving_vs_large": 0.5,
            "gap_vs_large": {"gap": gap, "ci95": [gap - 0.01, gap + 0.01], "mcnemar_p": p,
                             "significant": p < 0.05, "only_base_right": only_base,
                             "only_other_right": only_other}}


def _report():
    rows = [_row("large", 0.98, 0.0, 1.0), _row("cascade", 0.975, -0.005, 0.45, 4, 2),
            _row("cbnet", 0.90, -0.08, 1e-9, 40, 11), _row("int8", 0.985, 0.005, 0.5, 1, 3)]
    protocols = {p: {"samples": 360, "rows": rows} for p in ("test", "duplicated")}
    return {"command": "toolkit demo", "seconds": 12.0, "stages": {"reused": ["pool digits"]},
            "config": {"max_batch": 32, "repeats": 3},
            "energy": {"measured": False, "why_not": "no power source", "unit": "units"},
            "datasets": {"digits": {"protocols": protocols, "plots": [
                {"title": "t", "file": "accuracy_energy_digits.png"}],
                "selection": {"rule": "tolerance", "first": "a", "second": "b",
                              "threshold": 0.5, "val_accuracy": 0.97,
                              "val_handoff_rate": 0.2, "best_small": "a"}}}}


def test_shortfalls_say_how_far_with_the_interval_and_the_significance():
    lines = report.shortfalls(_report()["datasets"]["digits"]["protocols"]["test"]["rows"])
    assert len(lines) == 2  # int8 is above the large model: no shortfall
    assert lines[0].startswith("cascade is 0.50 points below the large model (95% CI -1.50 to "
                               "+0.50 points;")
    assert "McNemar p = 0.45: not significant" in lines[0]
    assert "cbnet is 8.00 points below" in lines[1] and lines[1].endswith(": significant)")


def test_the_markdown_report_has_one_table_per_protocol_and_the_plots():
    text = report.markdown(_report())
    assert text.count("| strategy | accuracy [95% CI] |") == 2
    assert "| cascade | 97.50% [95.5%, 98.5%] | -0.50 [-1.50, +0.50] |" in text
    assert "| cbnet | 90.00% [88.0%, 91.0%] | -8.00 [-9.00, -7.00]* |" in text
    assert "![t](accuracy_energy_digits.png)" in text
    assert "ESTIMATE, not measured (no power source)" in text


def test_the_printed_table_lines_up():
    lines = report.print_lines(_report())
    table = lines[1:6]
    assert len({len(line) for line in table}) == 1  # fixed width
    assert lines[-2].startswith("energy: ESTIMATE")


def test_copies_of_one_image_count_once_in_the_significance_test():
    """On the duplicated protocol each image is shown twice: a McNemar test over all samples
    doubles the evidence and called a 2-point gap significant that is not on the distinct images."""
    import numpy as np

    from basics.stats import paired_gap
    base = np.array([True] * 40 + [False] * 2 + [True] * 8)
    other = np.array([True] * 40 + [True] * 2 + [False] * 8)
    clusters = np.concatenate([np.arange(50), np.arange(50)])
    doubled = np.concatenate([base, base]), np.concatenate([other, other])
    naive = paired_gap(*doubled, clusters=clusters)
    fair = paired_gap(*doubled, clusters=clusters, test_clusters=True)
    single = paired_gap(base, other)
    assert naive["mcnemar_p"] < 0.05 <= fair["mcnemar_p"]
    assert fair["mcnemar_p"] == single["mcnemar_p"] and fair["mcnemar_samples"] == 50
    assert fair["gap"] == naive["gap"] == single["gap"]
