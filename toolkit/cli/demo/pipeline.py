"""``run_demo``: prepare every data set (cached stages), compare the strategies, write
``report/`` and return the report dict."""
import os
import time

from basics.errors import InputError


def run_demo(config, command="toolkit demo", log=lambda line: None):
    """The whole demo (see :mod:`toolkit.cli.demo`); returns the report dict."""
    from basics.lazy import lazy_import
    lazy_import("torch", "the demo (it trains the models first)")
    from toolkit.cli.demo import compare, plots, prepare, report
    from toolkit.cli.demo.stages import StageCache
    from toolkit.power.config import PowerConfig
    from toolkit.power.meter import PowerMeter
    from toolkit.power.sources import find_source
    started = time.time()
    power = config.power or PowerConfig(source="auto")
    if power.source not in ("auto", "none"):
        find_source(power)  # a named source that does not work fails now, not after the training
    cache = StageCache(fresh=config.fresh, log=log)
    prepared = []
    for spec in config.datasets:
        name = _folder_name(spec)
        log("{}: preparing (train, prune, build engines, choose the pair)".format(name))
        item = prepare.prepare(spec, os.path.join(config.out_dir, name), config, cache, log)
        item.name = name  # an image folder's name, not its path
        prepared.append(item)
    for item in prepared:
        prepare.check_prepared(item)
    report_dir = os.path.join(config.out_dir, "report")
    os.makedirs(report_dir, exist_ok=True)
    results, windows = {}, []
    with PowerMeter(power) as meter:
        if meter.measuring:
            meter.measure_idle()
        for item in prepared:
            log("{}: running every strategy".format(item.name))
            results[item.name] = dict(compare.compare(item, config, meter, log, windows),
                                      selection=item.selection, stages=item.summaries)
        energy = _energy_info(meter, results)
        plot_files = []
        if meter.measuring and windows:
            path = os.path.join(report_dir, "power_trace.png")
            plots.power_trace(path, meter, windows)
            plot_files.append({"title": "power trace", "file": os.path.basename(path)})
    for name, result in results.items():
        result["protocols"] = {p: result.pop(p) for p in compare.PROTOCOLS}
        path = os.path.join(report_dir, "accuracy_energy_{}.png".format(name))
        plots.accuracy_vs_energy(path, name, result, energy)
        result["plots"] = [{"title": "{}: accuracy against energy per inference".format(name),
                            "file": os.path.basename(path)}]
    if plot_files:
        next(iter(results.values()))["plots"].extend(plot_files)
    data = {"version": 1, "command": command, "seconds": time.time() - started,
            "config": dict(config.training_settings(), datasets=list(config.datasets),
                           max_batch=config.max_batch, repeats=config.repeats,
                           duplicate=config.duplicate, backend=config.backend),
            "energy": energy, "datasets": results,
            "stages": {"reused": cache.hits, "ran": cache.misses}}
    json_path, md_path = report.write(data, report_dir)
    for line in report.print_lines(data):
        log(line)
    log("report: {} ({}, plots beside it)".format(md_path, os.path.basename(json_path)))
    return data


def _folder_name(spec):
    name = os.path.basename(os.path.normpath(spec)) if os.path.isdir(spec) else spec
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "data"


def _energy_info(meter, results):
    """What the energy column holds: measured (source, unit) or estimated (why, unit)."""
    units = {row["energy_unit"] for result in results.values() for p in ("test", "duplicated")
             for row in result[p]["rows"] if row["energy_unit"]}
    if meter.measuring:
        return {"measured": True, "source": meter.source.info()["description"],
                "unit": ", ".join(sorted(units)) or "mJ", "idle": meter.idle}
    why = "power switched off" if meter.config.source == "none" else \
        "no power source here; `toolkit power --list` says why"
    if len(units) > 1:
        raise InputError("the energy estimates came in mixed units {}".format(sorted(units)))
    return {"measured": False, "why_not": why, "unit": units.pop() if units else "n/a"}
