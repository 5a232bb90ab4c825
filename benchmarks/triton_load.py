"""Triton under load: N concurrent clients, each sending a fixed number of one-sample requests
to the exported strategy model, against in-process `toolkit run` on the same data.

Printed side by side, from one run on one server (the nvidia-pytriton wheel's tritonserver, CPU
only, on 127.0.0.1), over gRPC and HTTP: throughput (samples/s) and p50/p99 latency per request
for 1, 2, 4, 8 clients, with dynamic batching and without; the ratio of throughput at 8 clients to 1 client
(aim: >= 3x with dynamic batching); in-process throughput at batch 1 and batch 8; and BLS (the
strategy calling an engine model through Triton, one request per engine per batch) vs the
engines in the strategy's own process.

The model: ``export.models.small_cnn`` (untrained: timing does not depend on the weights) on the
bundled 8x8 digits test split, a single-model deployment, ONNX Runtime on the CPU.
Needs ``make triton-env`` (x86-64); elsewhere it says so and exits.

    python -m benchmarks.triton_load [--quick] [--requests N] [--rounds N] [--clients 1,2,4,8]
        [--protocols grpc,http,http-lean]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

from benchmarks.common import export_untrained

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _repository(folder, onnx_path, spec):
    from toolkit.triton.export import ExportOptions, export_repository
    from toolkit.triton.model_config import BatchingConfig, ModelConfig, TensorConfig
    root = os.path.join(folder, "models")
    export_repository(spec, root, ExportOptions(model_name="batched", engine_models=False))
    part = os.path.join(folder, "part")
    export_repository(spec, part, ExportOptions(model_name="alone", engine_models=False,
                                                dynamic_batching=False))
    shutil.move(os.path.join(part, "alone"), os.path.join(root, "alone"))
    source = open(os.path.join(REPO, "benchmarks", "_triton_bls_models.py")).read()
    batching = BatchingConfig((8, 32), 500)
    engine = ModelConfig("engine", [TensorConfig("input", "float32", [1, 8, 8])],
                         [TensorConfig("logits", "float32", [10])], 64, backend="python",
                         batching=batching)
    with open(os.path.join(root, "batched", "config.pbtxt")) as handle:
        strategy_config = handle.read()
    bls = strategy_config.replace('name: "batched"', 'name: "bls"') + (
        'parameters {\n  key: "engine"\n  value: { string_value: "engine" }\n}\n')
    for name, config, role in (("engine", engine.to_pbtxt(), "engine"), ("bls", bls, "bls")):
        os.makedirs(os.path.join(root, name, "1"))
        with open(os.path.join(root, name, "config.pbtxt"), "w") as handle:
            handle.write(config)
        with open(os.path.join(root, name, "1", "model.py"), "w") as handle:
            handle.write(source.replace('ROLE = "engine"', 'ROLE = "{}"'.format(role)))
    shutil.copy(onnx_path, os.path.join(root, "engine", "1", "model.onnx"))
    shutil.copy(os.path.join(root, "batched", "labels.txt"), os.path.join(root, "bls"))
    return root


class _LeanHttp(object):
    """A minimal HTTP/REST client of Triton's binary tensor protocol (the request bytes made once
    per sample; http.client on a kept-alive connection): far less client CPU per request than
    tritonclient, as perf_analyzer's C++ client, so that on a shared 2-core machine the load
    generator takes less from the server. Checks each answer's status and size."""

    def __init__(self, url):
        import http.client
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        import socket
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.cache = {}

    def infer(self, model, images):
        key = (model, images.tobytes())
        if key not in self.cache:
            body = np.ascontiguousarray(images, dtype=np.float32).tobytes()
            header = json.dumps({"inputs": [{
                "name": "images", "shape": list(images.shape), "datatype": "FP32",
                "parameters": {"binary_data_size": len(body)}}], "outputs": [
                {"name": n, "parameters": {"binary_data": True}}
                for n in ("labels", "confidence")]}).encode()
            self.cache[key] = (header + body, {
                "Inference-Header-Content-Length": str(len(header)),
                "Content-Type": "application/octet-stream"})
        payload, headers = self.cache[key]
        self.connection.request("POST", "/v2/models/{}/infer".format(model), payload, headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200 or len(data) < 12 * len(images):
            raise RuntimeError("lean client: HTTP {}: {}".format(response.status, data[:200]))

    def close(self):
        self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _load(url, model, images, clients, requests):
    """``clients`` concurrent clients (threads of one process, each with its own connection, as
    Triton's perf_analyzer drives --concurrency N), each sending ``requests`` one-sample requests
    -> (samples/s, per-request latencies in ms)."""
    from toolkit.triton.client import TritonClient
    lean = url.startswith("lean+")
    connect = (lambda: _LeanHttp(url[5:])) if lean else (lambda: TritonClient(url))
    latencies = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors = []

    def client(index):
        try:
            with connect() as connection:
                connection.infer(model, images[:1])  # connect before the clock starts
                barrier.wait()
                for r in range(requests):
                    sample = images[(index * requests + r) % len(images)][None]
                    begin = time.perf_counter()
                    connection.infer(model, sample)
                    latencies[index].append((time.perf_counter() - begin) * 1000.0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return clients * requests / seconds, np.concatenate([np.asarray(v) for v in latencies])


def _rounds(urls, configs, images, requests, rounds):
    """Every (protocol, model, clients) of ``configs`` once per round, the order rotating each
    round so that machine noise hits all alike -> {config: (median samples/s, p50 ms, p99 ms)}."""
    rates = {c: [] for c in configs}
    latencies = {c: [] for c in configs}
    for r in range(rounds):
        shift = r % len(configs)
        for config in configs[shift:] + configs[:shift]:
            rate, values = _load(urls[config[0]], config[1], images, config[2], requests)
            rates[config].append(rate)
            latencies[config].append(values)
    return {c: (float(np.median(rates[c])), float(np.percentile(np.concatenate(latencies[c]), 50)),
                float(np.percentile(np.concatenate(latencies[c]), 99))) for c in configs}


def _in_process(spec, data, batch):
    from toolkit.deployment import load_spec
    from toolkit.running import run_deployment
    with load_spec(spec) as deployment:
        report = run_deployment(deployment, data, batch_size=batch)
    summary = report.latency_batch()
    return report.throughput_per_s, summary["latency_median_ms"], summary["latency_p99_ms"]


def _row(label, figures):
    rate, p50, p99 = figures
    print("{:<45} {:>10.0f} {:>9.3f} {:>9.3f}".format(label, rate, p50, p99))


def _plural(count):
    return "{} client{}".format(count, "s" if count > 1 else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and client counts")
    parser.add_argument("--requests", type=int, default=None,
                        help="requests per client [default: 300; --quick: 60]")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds over every configuration, medians reported [default: 3; "
                             "--quick: 1]")
    parser.add_argument("--clients", default=None,
                        help="client counts, comma-separated [default: 1,2,4,8; --quick: 1,8]")
    parser.add_argument("--protocols", default=None,
                        help="client kinds, comma-separated: grpc and http (tritonclient), "
                             "http-lean (a minimal HTTP client) [default: all three; --quick: "
                             "grpc]")
    args = parser.parse_args(argv)
    requests = args.requests or (60 if args.quick else 300)
    rounds = args.rounds or (1 if args.quick else 3)
    counts = [int(c) for c in (args.clients or ("1,8" if args.quick else "1,2,4,8")).split(",")]
    protocols = (args.protocols or ("grpc" if args.quick else "grpc,http,http-lean")).split(",")
    if set(protocols) - {"grpc", "http", "http-lean"} or len(counts) < 2:
        parser.error("--protocols takes grpc, http, http-lean; --clients at least two counts")
    from toolkit.triton import wheel
    from toolkit.triton.server import ServerConfig, TritonServer, free_ports
    env = wheel.testing_env_dir()
    reason = wheel.unavailable_reason(env)
    if reason:
        print("triton_load: not run: " + reason)
        return 0
    from calibration.datasets import load_dataset
    data = load_dataset("digits:test")
    images = np.ascontiguousarray(data.images, dtype=np.float32)
    folder = tempfile.mkdtemp(prefix="triton-load-")
    try:
        onnx_path = export_untrained(folder)
        spec = os.path.join(folder, "deploy.yaml")
        with open(spec, "w") as handle:
            handle.write("engines: {{small: {}}}\nstrategy: small\n".format(
                os.path.basename(onnx_path)))
        root = _repository(folder, onnx_path, spec)
        http, grpc, metrics = free_ports(3)
        config = ServerConfig(root, binary=wheel.find_in_env(env), http_port=http, grpc_port=grpc,
                              metrics_port=metrics, address="127.0.0.1", python_env=env,
                              log_path=os.path.join(folder, "server.log"))
        print("machine: {} CPU cores (shared with other jobs); clients and server on it; {} "
              "one-sample requests per client, {} round(s)".format(os.cpu_count(), requests,
                                                                  rounds))
        local = {b: _in_process(spec, data, b) for b in (1, 8)}
        low, high = counts[0], counts[-1]
        urls = {"grpc": config.grpc_url, "http": config.http_url,
                "http-lean": "lean+" + config.http_url}
        configs = [(p, m, c) for p in protocols for m in ("batched", "alone", "bls")
                   for c in counts if m != "bls" or c in (low, high)]
        with TritonServer(config):
            measured = _rounds(urls, configs, images, requests, rounds)
        print("\n{:<45} {:>10} {:>9} {:>9}".format("", "samples/s", "p50 ms", "p99 ms"))
        for batch, figures in sorted(local.items()):
            _row("in-process toolkit run, batch {}".format(batch), figures)
        for protocol in protocols:
            for model, label in (("batched", "dynamic batching"), ("alone", "no batching"),
                                 ("bls", "BLS engine model")):
                for clients in counts:
                    if (protocol, model, clients) in measured:
                        _row("{} {}, {}".format(protocol, label, _plural(clients)),
                             measured[protocol, model, clients])
        print()
        for protocol in protocols:
            rate = {(m, c): measured[protocol, m, c][0] for _, m, c in configs if _ == protocol}
            print("{}: throughput {} / {}: {:.2f}x with dynamic batching (aim >= 3x), {:.2f}x "
                  "without; {} with dynamic batching / the faster {} figure: {:.2f}x".format(
                      protocol, _plural(high), _plural(low),
                      rate["batched", high] / rate["batched", low],
                      rate["alone", high] / rate["alone", low], _plural(high), _plural(low),
                      rate["batched", high] / max(rate["batched", low], rate["alone", low])))
            print("{}: in-process engines / BLS engine model: throughput {:.2f}x at {}, {:.2f}x "
                  "at {}; p50 {:.3f} vs {:.3f} ms at {}".format(
                      protocol, rate["batched", low] / rate["bls", low], _plural(low),
                      rate["batched", high] / rate["bls", high], _plural(high),
                      measured[protocol, "batched", low][1], measured[protocol, "bls", low][1],
                      _plural(low)))
            print("{}: Triton at {} / in-process batch 1: {:.2f}x throughput".format(
                protocol, _plural(high), rate["batched", high] / local[1][0]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
