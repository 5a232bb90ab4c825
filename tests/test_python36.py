"""Device-side packages must run on the Jetson Nano's Python 3.6 and never import torch."""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

DEVICE_PACKAGES = ("basics", "engines", "calibration", "energy_model", "toolkit")


def test_device_packages_are_python36_compatible():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.exists(vermin):
        pytest.skip("vermin is not installed (pip install vermin)")
    result = subprocess.run([vermin, "--no-tips", "--violations", "-t=3.6-", "--eval-annotations"]
                            + list(DEVICE_PACKAGES), cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_device_packages_never_import_torch_at_module_level():
    pattern = re.compile(r"^(import torch|from torch)\b", re.M)
    offenders = []
    for package in DEVICE_PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO_ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    with open(path) as handle:
                        if pattern.search(handle.read()):
                            offenders.append(os.path.relpath(path, REPO_ROOT))
    assert offenders == []
