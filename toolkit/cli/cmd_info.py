"""``toolkit info``: what this machine is and which backends it can use."""
import json

import click

from toolkit.cli.options import json_flag


@click.command("info")
@json_flag("Print the facts as one JSON object.")
@click.option("--root", default="/", show_default=True,
              type=click.Path(exists=True, file_okay=False),
              help="Read the Jetson files (/proc/device-tree, /etc/nv_tegra_release, "
                   "/usr/local/cuda) under this root instead (for a copied board image).")
def info(as_json, root):
    """Show what this machine is: Jetson board, SoC and L4T/JetPack release, OS, Python, which
    backends are usable (TensorRT, ONNX Runtime and its providers, CUDA bindings, torch), and
    which INT8 path this CPU takes on ONNX Runtime (x86 VNNI or not, ARM dot product or not).

    Then it checks the device install (docs/jetson.md) and says how to fix what is wrong: Python
    vs JetPack, numpy vs TensorRT, OPENBLAS_CORETYPE with numpy 1.19.5 on aarch64, tensorrt
    importable from this venv, pip new enough for manylinux2014 wheels, onnx for the confidence
    head in engines.

    \b
    Examples:
      toolkit info
      toolkit info --json > machine.json
    """
    from engines.platform_info import collect_info

    facts = collect_info(root)
    if as_json:
        click.echo(json.dumps(facts, indent=2, sort_keys=True))
        return
    for line in info_lines(facts):
        click.echo(line)


def info_lines(facts):
    """Human-readable lines of :func:`engines.platform_info.collect_info`."""
    from engines.backends import all_backends
    machine, jetson, backends = facts["machine"], facts["jetson"], facts["backends"]
    lines = ["machine      {} {} {}{} ({} CPUs{})".format(
        machine["system"], machine["kernel"], machine["arch"],
        ", " + machine["os"] if machine["os"] else "", machine["cpus"],
        ", {} MiB".format(machine["memory_mb"]) if machine["memory_mb"] else ""),
        "python       {} ({})".format(machine["python"], machine["python_executable"]),
        "toolkit      {}".format(machine["toolkit"])]
    if jetson["is_jetson"]:
        lines.append("jetson       {}".format(jetson["model"] or "unknown model"))
        if jetson["soc"]:
            lines.append("soc          {} ({}, {} GPU, compute capability {}; FP16 {}, INT8 {}, "
                         "DLA {})".format(jetson["soc"], jetson["family"], jetson["gpu_arch"],
                                          jetson["compute_capability"], _yes(jetson["fast_fp16"]),
                                          _yes(jetson["fast_int8"]), _yes(jetson["dla"])))
        lines.append("l4t          {}{}".format(
            jetson["l4t"] or "unknown (no /etc/nv_tegra_release)",
            " (JetPack {})".format(jetson["jetpack"]) if jetson["jetpack"] else ""))
    else:
        lines.append("jetson       no")
    lines.append("cuda         {}".format(facts["cuda_toolkit"] or "no CUDA toolkit found"))
    for backend in all_backends():
        lines.append("{:<12} {}".format(backend.name, backend.info_text(backends[backend.name])))
    for key, label in (("pycuda", "pycuda"), ("cuda_python", "cuda-python"), ("onnx", "onnx"),
                       ("torch", "torch")):
        entry = backends[key]
        if entry["installed"]:
            text = entry["version"] or "installed"
        else:
            text = "not installed" + _error(entry)
        lines.append("{:<12} {}".format(label, text))
    usable = [backend for backend in all_backends() if backends[backend.name]["usable"]]
    lines.append("backends     {}".format(", ".join(b.name for b in usable) if usable else
                                         "none: pip install onnxruntime (or install TensorRT)"))
    cpu_int8 = facts.get("cpu_int8")
    if cpu_int8:
        lines.append("cpu int8     {} ({}): ONNX Runtime runs INT8 as {} ({})".format(
            cpu_int8["arch"], cpu_int8["instructions"], cpu_int8["form"], cpu_int8["reason"]))
    lines.append("build        `toolkit build` makes {} engines here".format(
        (usable or all_backends()[-1:])[0].label))
    lines.extend(install_check_lines(facts.get("install_checks", ())))
    return lines


def install_check_lines(checks):
    """One line per install check (docs/jetson.md), and a ``fix:`` line under each wrong one."""
    lines = []
    for check in checks:
        state = {True: "ok", False: "FIX", None: "-"}[check["ok"]]
        lines.append("check        {:<4} {:<9} {}".format(state, check["name"], check["detail"]))
        if check["fix"]:
            lines.append("               fix: {}".format(check["fix"]))
    return lines


def _yes(flag):
    return "yes" if flag else "no"


def _error(entry):
    return " ({})".format(entry["error"]) if entry.get("error") else ""
