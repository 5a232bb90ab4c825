"""Run every benchmark in this folder, one after another, each in its own Python process.

Every ``benchmarks/<name>.py`` except this file, ``__init__.py`` and private ``_*.py`` helpers runs
as ``python -m benchmarks.<name> [--quick]``; its output goes straight to this terminal. The exit
status is non-zero when any benchmark failed; a summary at the end says which.

    python -m benchmarks.run_all [--quick] [NAME ...]     (what `make bench` runs)
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = ("__init__", "run_all")


def discover(folder=HERE):
    """Sorted module names of the benchmarks in ``folder``."""
    names = []
    for entry in os.listdir(folder):
        name, ext = os.path.splitext(entry)
        if ext == ".py" and name not in SKIP and not name.startswith("_"):
            names.append(name)
    return sorted(names)


def run_one(module, quick, cwd):
    """Run ``python -m module [--quick]`` in ``cwd``; returns its exit status."""
    command = [sys.executable, "-m", module] + (["--quick"] if quick else [])
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.call(command, cwd=cwd)


def main(argv=None, folder=HERE, package="benchmarks", cwd=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="pass --quick to every benchmark (fewer rounds: a smoke run)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="run only these benchmarks [default: all of them]")
    args = parser.parse_args(argv)
    found = discover(folder)
    unknown = [name for name in args.names if name not in found]
    if unknown:
        parser.error("unknown benchmark(s) {}; there are: {}".format(
            ", ".join(unknown), ", ".join(found)))
    names = args.names or found
    cwd = cwd or os.path.dirname(os.path.abspath(folder))
    results = []
    for index, name in enumerate(names):
        module = "{}.{}".format(package, name)
        print("=== [{}/{}] python -m {}{}".format(index + 1, len(names), module,
                                                 " --quick" if args.quick else ""), flush=True)
        started = time.perf_counter()
        status = run_one(module, args.quick, cwd)
        seconds = time.perf_counter() - started
        results.append((name, status, seconds))
        print("=== {}: {} in {:.1f} s".format(
            module, "ok" if status == 0 else "FAILED (exit status {})".format(status), seconds),
            flush=True)
    failed = [name for name, status, _ in results if status != 0]
    print("=== {} benchmark(s) run, {} failed{}".format(
        len(results), len(failed), ": " + ", ".join(failed) if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
