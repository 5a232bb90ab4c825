"""The sampler process: start/stop, windows, a dying sampler, no orphan process."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import REPO_ROOT
from tests.processes import alive, wait_for
from toolkit.power.config import PowerConfig
from toolkit.power.meter import PowerMeter


def _gone(pid, timeout_s=10.0):
    """True once ``pid`` no longer runs (a zombie left to a non-reaping init counts as gone)."""
    return wait_for(lambda: not alive(pid), timeout_s)


def test_windows_measure_the_energy_that_was_drawn(make_jetson):
    jetson = make_jetson("orin-nano")
    config = PowerConfig(source="ina3221", sysfs_root=jetson.root, rate_hz=200.0)
    with PowerMeter(config) as meter:
        pid = meter.sampler.pid
        jetson.set("VDD_IN", 5000, 400)                 # 2000 mW
        time.sleep(0.3)
        idle_mw = meter.measure_idle(0.4)
        jetson.set("VDD_IN", 5000, 1200)                # 6000 mW while "inferring"
        time.sleep(0.3)
        with meter.window("run") as window:
            time.sleep(0.6)
            window.inferences = 60
        time.sleep(0.3)  # the load goes on around the window (this fake sensor has no lag)
        jetson.set("VDD_IN", 5000, 400)
        report = meter.report(estimate_mj_per_inference=12.5)
    assert _gone(pid)
    assert idle_mw == pytest.approx(2000.0, rel=0.02)
    run = report.window("run")
    assert run.measured and run.samples > 50
    assert run.avg_power_mw == pytest.approx(6000.0, rel=0.02)
    assert run.mj_per_inference == pytest.approx(6000.0 * run.duration_s / 60, rel=0.02)
    assert run.mj_per_inference_above_idle == pytest.approx(4000.0 * run.duration_s / 60, rel=0.03)
    assert run.rails["VDD_SOC"]["energy_mj"] > 0  # parts reported, not added
    assert run.energy_mj == pytest.approx(run.rails["VDD_IN"]["energy_mj"])
    assert report.sampling["achieved_hz"] > 20
    text = "\n".join(report.lines())
    assert "ESTIMATE, not measured" in text and "12.5 mJ per inference" in text
    assert report.to_dict()["estimate"]["value"] == 12.5


def test_a_dying_sampler_is_reported_and_the_run_goes_on(make_jetson):
    jetson = make_jetson("nano")
    with PowerMeter(PowerConfig(sysfs_root=jetson.root, rate_hz=100.0)) as meter:
        with meter.window("before") as window:
            time.sleep(0.2)
            window.inferences = 10
        os.kill(meter.sampler.pid, signal.SIGKILL)
        with meter.window("after") as window:
            time.sleep(0.1)
            window.inferences = 10
        report = meter.report()
    assert report.window("before").measured
    after = report.window("after")
    assert not after.measured and after.mj_per_inference is None
    assert any("not measured" in flag for flag in after.flags)
    assert any(flag.startswith("sampler died") for flag in report.flags)


def test_a_source_error_mid_run_is_reported(make_jetson):
    jetson = make_jetson("orin-nx")
    with PowerMeter(PowerConfig(sysfs_root=jetson.root, rate_hz=100.0)) as meter:
        time.sleep(0.1)
        with open(jetson.rails["VDD_SOC"]["current"], "w") as handle:
            handle.write("oops\n")
        with meter.window("broken") as window:
            time.sleep(0.2)
            window.inferences = 5
        report = meter.report()
    died = [flag for flag in report.flags if flag.startswith("sampler died")]
    assert died and "malformed value" in died[0] and "curr3_input" in died[0]
    assert not report.window("broken").measured


def test_the_sampler_stops_when_the_with_block_raises(make_jetson):
    jetson = make_jetson("nano")
    meter = PowerMeter(PowerConfig(sysfs_root=jetson.root))
    with pytest.raises(RuntimeError):
        with meter:
            pid = meter.sampler.pid
            raise RuntimeError("inference failed")
    assert not meter.sampler.alive and _gone(pid)


_PARENT = textwrap.dedent("""
    import os, signal, sys, time
    sys.path.insert(0, {repo!r})
    from toolkit.power.config import PowerConfig
    from toolkit.power.meter import PowerMeter
    if __name__ == "__main__":
        meter = PowerMeter(PowerConfig(sysfs_root={root!r})).start()
        print(meter.sampler.pid, flush=True)
        if {how!r} == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise SystemExit("parent gives up without stopping the meter")
""")


@pytest.mark.parametrize("how", ["kill", "exit"])
def test_no_orphan_sampler_when_the_parent_dies(make_jetson, tmp_path, how):
    jetson = make_jetson("nano")
    script = tmp_path / "parent.py"
    script.write_text(_PARENT.format(repo=REPO_ROOT, root=jetson.root, how=how))
    result = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60)
    pid = int(result.stdout.split()[0])
    assert _gone(pid), "sampler {} outlived its parent".format(pid)


def test_nothing_to_measure_is_said_and_estimates_stay_apart():
    with PowerMeter(PowerConfig(source="none")) as meter:
        assert meter.measure_idle(0.0) is None
        with meter.window("run") as window:
            window.inferences = 4
        report = meter.report(estimate_mj_per_inference=2.0)
    assert not report.measured and not meter.measuring
    assert report.window("run").energy_mj is None
    lines = report.lines()
    assert lines[0].startswith("energy: not measured")
    assert lines[-1] == "ESTIMATE, not measured (analytical estimate): 2 mJ per inference"


def test_pause_resume_and_niceness(make_jetson):
    jetson = make_jetson("nano")
    config = PowerConfig(sysfs_root=jetson.root, rate_hz=100.0, sampler_nice=5)
    with PowerMeter(config) as meter:
        assert os.getpriority(os.PRIO_PROCESS, meter.sampler.pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + 5)
        meter.pause()
        count = len(meter.fetch())
        with meter.window("paused") as window:
            time.sleep(0.1)
        assert len(meter.fetch()) == count  # nothing read while paused
        meter.resume()
        time.sleep(0.05)
        with meter.window("resumed") as window:
            time.sleep(0.1)
            window.inferences = 1
        report = meter.report()
    assert report.window("paused").flags == ["not measured: sampling was paused during the window"]
    assert report.window("resumed").measured
