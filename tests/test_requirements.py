"""The requirement files a Jetson user installs pin what the device test jobs test.

``requirements/jetson-jp4.txt`` once pinned numpy 1.19.4 while the jp4 job tested 1.19.5 with
onnxruntime 1.10.0, which requires numpy >= 1.19.5: pip refused the file on every Jetson. Each
package both files of a JetPack name must have the same version there, except the differences
listed here with their reason.
"""
import os
import re

import pytest

from tests.conftest import REPO_ROOT

# (jetpack, package): why the device file pins another version than the test job
DIFFERENCES = {
    ("jp5", "numpy"): "the job runs numpy 1.24, what pip resolves on JetPack 5.1 without a pin, "
                      "to prove the toolkit works with it; users get 1.23.5 for TensorRT 8.5's "
                      "trt.nptype (docs/jetson.md)",
}


def _pins(name):
    pins = {}
    with open(os.path.join(REPO_ROOT, "requirements", name)) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            match = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)$", line)
            assert match, "{}: not a plain pin: {}".format(name, line)
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.mark.parametrize("jetpack", ["jp4", "jp5"])
def test_the_device_file_pins_what_the_device_job_tests(jetpack):
    device, job = _pins("jetson-{}.txt".format(jetpack)), _pins("ci-{}.txt".format(jetpack))
    for package in sorted(set(device) & set(job)):
        if (jetpack, package) in DIFFERENCES:
            continue
        assert device[package] == job[package], (
            "{}: jetson-{} pins {}, the device job tests {}".format(
                package, jetpack, device[package], job[package]))
    for required in ("numpy", "onnxruntime", "onnx"):
        assert required in device and required in job, required


def test_every_listed_difference_is_still_a_difference():
    for jetpack, package in DIFFERENCES:
        device, job = _pins("jetson-{}.txt".format(jetpack)), _pins("ci-{}.txt".format(jetpack))
        assert device[package] != job[package], (jetpack, package)


@pytest.mark.parametrize("jetpack", ["jp4", "jp5"])
def test_the_emulated_arm64_set_pins_what_the_device_job_tests(jetpack):
    """requirements/ci-arm64-SET.txt (make test-arm64) is the device job's set on arm64: every
    package the job pins, at the same version (plus what those pull in)."""
    arm64, job = _pins("ci-arm64-{}.txt".format(jetpack)), _pins("ci-{}.txt".format(jetpack))
    for package in sorted(job):
        assert arm64.get(package) == job[package], (
            "{}: ci-arm64-{} pins {}, the device job tests {}".format(
                package, jetpack, arm64.get(package), job[package]))

