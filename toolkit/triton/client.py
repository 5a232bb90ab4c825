"""The client of an exported deployment: ``toolkit run --triton URL MODEL --data ...``.

Sends the data set in batches to the strategy model over HTTP (``http://HOST:8000``, the default
without a scheme) or gRPC (``grpc://HOST:8001``) with ``tritonclient``, and returns the same
:class:`toolkit.running.RunReport` as an in-process run (its counters stay on the server; latency is
the client's round trip)."""
import json
import time

import numpy as np

from basics.errors import InputError, ToolkitError
from basics.lazy import lazy_import
from basics.progress import progress_bar

INPUT_NAME = "images"


class TritonClient(object):
    """One connection to a Triton server, HTTP or gRPC by the URL's scheme."""

    def __init__(self, url, timeout_s=60.0):
        self.url = url
        self.timeout_s = float(timeout_s)
        scheme, _, address = url.partition("://")
        if not address:
            scheme, address = "http", url
        if scheme not in ("http", "grpc"):
            raise InputError("--triton URL must start with http:// or grpc://, got {}".format(url))
        self.protocol = scheme
        self.module = lazy_import("tritonclient." + scheme,
                                  "talking to Triton (pip install 'tritonclient[http,grpc]')")
        address = address.rstrip("/")
        if scheme == "http":
            self.client = self.module.InferenceServerClient(
                address, connection_timeout=self.timeout_s, network_timeout=self.timeout_s)
        else:
            self.client = self.module.InferenceServerClient(address)

    def model_config(self, model):
        """The model's configuration as a dict (ToolkitError when the server lacks it)."""
        exceptions = lazy_import("tritonclient.utils", "talking to Triton")
        try:
            if self.protocol == "http":
                return self.client.get_model_config(model)
            return self.client.get_model_config(model, as_json=True)["config"]
        except exceptions.InferenceServerException as exc:
            raise ToolkitError("{}: model {!r}: {}".format(self.url, model, exc.message())) from None
        except OSError as exc:
            raise ToolkitError("cannot reach Triton at {}: {}".format(
                self.url, exc.strerror or exc)) from None

    def infer(self, model, images, outputs=("labels", "confidence")):
        """``{output: array}`` for one batch of float32 images."""
        exceptions = lazy_import("tritonclient.utils", "talking to Triton")
        feed = self.module.InferInput(INPUT_NAME, list(images.shape), "FP32")
        feed.set_data_from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        wanted = [self.module.InferRequestedOutput(name) for name in outputs]
        try:
            if self.protocol == "http":
                result = self.client.infer(model, [feed], outputs=wanted)
            else:
                result = self.client.infer(model, [feed], outputs=wanted,
                                           client_timeout=self.timeout_s)
        except exceptions.InferenceServerException as exc:
            raise ToolkitError("{}: {}".format(self.url, exc.message())) from None
        except OSError as exc:
            raise ToolkitError("cannot reach Triton at {}: {}".format(
                self.url, exc.strerror or exc)) from None
        return {name: result.as_numpy(name) for name in outputs}

    def close(self):
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def class_names(config):
    """The deployment's class names written into the model's parameters (or None)."""
    value = config.get("parameters", {}).get("class_names", {}).get("string_value")
    return json.loads(value) if value else None


def run_remote(url, model, data, batch_size=32, progress=False, timeout_s=60.0):
    """Classify ``data`` (a :class:`calibration.datasets.Dataset`) on the server's ``model`` in
    batches of ``batch_size`` -> :class:`toolkit.running.RunReport`."""
    from toolkit.running import RunReport
    batch_size = int(batch_size)
    if batch_size < 1:
        raise InputError("the batch size must be at least 1, got {}".format(batch_size))
    total = len(data.images)
    if total == 0:
        raise InputError("{}: the data set is empty".format(data.name))
    labels = np.empty(total, dtype=np.int64)
    confidence = np.empty(total, dtype=np.float32)
    batch_ms, batch_sizes = [], []
    with TritonClient(url, timeout_s) as client:
        config = client.model_config(model)
        starts = range(0, total, batch_size)
        bar = progress_bar(len(starts), "run", "batch", progress)
        try:
            for start in starts:
                images = data.images[start:start + batch_size]
                begin = time.perf_counter()
                out = client.infer(model, images)
                batch_ms.append((time.perf_counter() - begin) * 1000.0)
                batch_sizes.append(len(images))
                labels[start:start + len(images)] = out["labels"].reshape(-1)
                confidence[start:start + len(images)] = out["confidence"].reshape(-1)
                bar.update(1)
        finally:
            bar.close()
    names = class_names(config) or (data.class_names or None)
    strategy = config.get("parameters", {}).get("strategy", {}).get("string_value", model)
    return RunReport(model, "{} on Triton at {}".format(strategy, url), data.name,
                            batch_size, labels, confidence, data.labels,
                            getattr(data, "sources", None), names, batch_ms, batch_sizes, {})
