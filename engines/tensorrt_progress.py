"""Progress of a TensorRT build, which takes minutes on a Jetson Nano and prints nothing itself.

Where TensorRT has a progress monitor (``trt.IProgressMonitor`` and ``IBuilderConfig.
progress_monitor``, 10.x) its phases and steps are reported; otherwise (8.x) the elapsed time every
``interval_s`` seconds and the builder's own log at INFO. ``report`` is any callable taking one line
of text (the CLI prints it on stderr); every callback TensorRT makes catches its own errors (an
exception escaping one aborts TensorRT 8.x).
"""
import contextlib
import threading
import time


def _monitor_class(trt, report):
    base = trt.IProgressMonitor

    class ProgressMonitor(base):
        """Reports phase starts and ends (with their step counts) through ``report``."""

        def __init__(self):
            base.__init__(self)
            self.steps = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                self.steps[phase_name] = int(num_steps)
                depth = "  " if parent_phase else ""
                report("{}{} ({} steps)".format(depth, phase_name, num_steps))
            except Exception:  # noqa: BLE001 - TensorRT calls this from C++
                pass

        def step_complete(self, phase_name, step):
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            try:
                report("{} done".format(phase_name))
            except Exception:  # noqa: BLE001 - see phase_start
                pass

    return ProgressMonitor


@contextlib.contextmanager
def build_progress(trt, builder_config, logger, report, interval_s=10.0):
    """Report the build's progress through ``report`` while the ``with`` body builds.

    ``logger`` is the backend's capturing logger: its INFO messages go to ``report`` meanwhile.
    ``report=None`` does nothing.
    """
    if report is None:
        yield
        return
    started = time.time()
    if hasattr(trt, "IProgressMonitor") and hasattr(builder_config, "progress_monitor"):
        report("building with TensorRT {} (progress monitor)".format(trt.__version__))
        builder_config.progress_monitor = _monitor_class(trt, report)()
        try:
            yield
        finally:
            builder_config.progress_monitor = None
    else:
        report("building with TensorRT {} (no progress monitor in this version: elapsed time "
               "and the builder's log follow; minutes on a Jetson Nano)".format(trt.__version__))
        stop = threading.Event()
        ticker = threading.Thread(target=_tick, args=(stop, started, interval_s, report),
                                  name="trt-build-progress")
        ticker.daemon = True
        previous, logger.listener = logger.listener, report
        ticker.start()
        try:
            yield
        finally:
            logger.listener = previous
            stop.set()
            ticker.join()
    report("TensorRT build finished in {:.1f} s".format(time.time() - started))


def _tick(stop, started, interval_s, report):
    while not stop.wait(interval_s):
        report("building ... {:.0f} s".format(time.time() - started))
