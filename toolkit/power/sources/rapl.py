"""Intel/AMD RAPL energy counters through Linux powercap (off the Jetson, on a PC).

``<root>/sys/class/powercap/intel-rapl:N/`` holds ``name`` (``package-0``, ``psys``, ...),
``energy_uj`` (a counter in microjoules that wraps at ``max_energy_range_uj``) and
sub-domains ``intel-rapl:N:M`` (``core``, ``uncore``, ``dram``). The total is ``psys`` (the
platform) when present, else the package domains (summed when there are several); sub-domains are
parts. Kernels since 2020 make ``energy_uj`` readable by root only: the error says how to grant
read access.
"""
import glob
import os
import re

from toolkit.power.boards import TotalPolicy
from toolkit.power.sources.base import (
    Source,
    SourceUnavailable,
    SysfsValue,
    open_all,
    parse_number,
    read_text,
)

POWERCAP_DIR = os.path.join("sys", "class", "powercap")
_TOP = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


class Domain(object):
    """One RAPL domain: rail name, ``energy_uj`` path, wrap-around range in microjoules."""

    def __init__(self, name, path, max_range_uj, top_level):
        self.name = name
        self.path = path
        self.energy = os.path.join(path, "energy_uj")
        self.max_range_uj = max_range_uj
        self.top_level = top_level

    def __repr__(self):
        return "Domain({!r})".format(self.name)


def _domain(path, parent=None):
    name = read_text(os.path.join(path, "name"))
    if parent is not None:
        name = "{}/{}".format(parent.name, name)
    range_file = os.path.join(path, "max_energy_range_uj")
    max_range = None
    if os.path.exists(range_file):
        max_range = parse_number(read_text(range_file), range_file, "uJ")
    return Domain(name, path, max_range, parent is None)


def discover_domains(root="/"):
    """RAPL domains under ``root``, packages first, each followed by its sub-domains (a pure
    function of the tree; SourceUnavailable if there are none)."""
    folder = os.path.join(root, POWERCAP_DIR)
    entries = {}
    for path in glob.glob(os.path.join(folder, "intel-rapl:*")):
        entries.setdefault(os.path.basename(path), path)
    tops = sorted((int(_TOP.match(n).group(1)), n) for n in entries if _TOP.match(n))
    domains = []
    for index, name in tops:
        parent = _domain(entries[name])
        domains.append(parent)
        # sub-domains live inside the package folder (and as links next to it)
        subs = {}
        for path in glob.glob(os.path.join(entries[name], "intel-rapl:{}:*".format(index))):
            subs[os.path.basename(path)] = path
        for sub_name, path in entries.items():
            match = _SUB.match(sub_name)
            if match and int(match.group(1)) == index:
                subs.setdefault(sub_name, path)
        for sub_name in sorted(subs, key=lambda n: int(_SUB.match(n).group(2))):
            domains.append(_domain(subs[sub_name], parent))
    if not domains:
        raise SourceUnavailable("no RAPL domains: {} has no intel-rapl:* folders".format(
            os.path.join(folder, "")))
    return domains


def rapl_policy(domains):
    """psys when present; else the package(s); sub-domains are parts."""
    names = [d.name for d in domains]
    tops = [d.name for d in domains if d.top_level]
    if "psys" in tops:
        return TotalPolicy("psys", parts=[n for n in names if n != "psys"])
    packages = [n for n in tops if n.startswith("package")] or tops
    parts = [n for n in names if n not in packages]
    if len(packages) == 1:
        return TotalPolicy(packages[0], parts=parts,
                           note="RAPL package = CPU socket (DRAM and other devices not included)")
    return TotalPolicy(None, packages, parts, "one RAPL package per CPU socket: summed")


class RaplSource(Source):
    """RAPL energy counters (mJ, wrapping); energy over a window is a counter difference."""

    kind = "rapl"
    averaging_s = 0.001
    averaging_note = "RAPL counters update about every millisecond"

    def __init__(self, domains, root="/"):
        wraps = {d.name: d.max_range_uj / 1000.0 for d in domains if d.max_range_uj}
        Source.__init__(self, [(d.name, "energy_mj") for d in domains], rapl_policy(domains),
                        "RAPL powercap counters at /{}".format(POWERCAP_DIR), wraps=wraps)
        self.domains = domains
        self._files = None

    def open(self):
        self.close()
        self._files = open_all([SysfsValue(domain.energy, "uJ") for domain in self.domains])

    def read(self):
        return tuple(f.read() / 1000.0 for f in self._files)

    def close(self):
        for value in self._files or ():
            value.close()
        self._files = None


def discover(config):
    return RaplSource(discover_domains(config.sysfs_root), config.sysfs_root)
