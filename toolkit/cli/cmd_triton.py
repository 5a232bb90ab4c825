"""``toolkit triton export`` and ``toolkit triton serve``: a deployment behind Triton Inference
Server (see docs/triton.md)."""
import signal
import time

import click

from basics.errors import InputError, ToolkitError


@click.group("triton")
def triton():
    """Serve a deployment from NVIDIA Triton Inference Server: export it as a model repository,
    run a local tritonserver on it; clients use `toolkit run --triton URL MODEL`.

    \b
    Examples:
      toolkit triton export deploy.yaml -o model_repository/
      toolkit triton serve model_repository/ --model deploy
      toolkit run --triton http://127.0.0.1:8000 deploy --data digits:test -o predictions.csv
    """


@triton.command("export")
@click.argument("spec", metavar="SPEC.yaml")
@click.option("-o", "--output", required=True, metavar="FOLDER",
              help="The model repository to write (a new or empty folder).")
@click.option("--name", default=None, metavar="MODEL",
              help="The strategy model's name (default: the spec's file name without .yaml); each "
                   "engine model is MODEL_<engine>.")
@click.option("--max-batch", default=64, show_default=True, type=int,
              help="The strategy model's max_batch_size (engines keep their own profile's).")
@click.option("--preferred-batch", multiple=True, type=int,
              help="Dynamic batching's preferred batch sizes (repeat the option; default: 8 and "
                   "32, those up to --max-batch).")
@click.option("--queue-delay-us", default=500, show_default=True, type=int,
              help="How long a request waits for others to batch with (microseconds).")
@click.option("--no-dynamic-batching", is_flag=True,
              help="Run each request alone (no dynamic batching) in the strategy model.")
@click.option("--instances", default=1, show_default=True, type=int,
              help="Model instances (each strategy instance has its own memo).")
@click.option("--no-engine-models", is_flag=True,
              help="Only the strategy model (it runs the engines in-process anyway).")
def export(spec, output, name, max_batch, preferred_batch, queue_delay_us, no_dynamic_batching,
           instances, no_engine_models):
    """Write a Triton model repository for the deployment SPEC.yaml: each engine as a model
    (tensorrt_plan for TensorRT engines, with the profile's batch range; onnxruntime_onnx for
    ONNX), the strategy (single, cascade, convert, memo) as one Python-backend model that clients
    call, a labels file and a README on serving it on a Jetson and on a server.
    """
    from toolkit.triton.export import ExportOptions, export_repository
    options = ExportOptions(name, max_batch, preferred_batch, queue_delay_us, instances,
                            not no_engine_models, not no_dynamic_batching)
    names = export_repository(spec, output, options)
    click.echo("model repository: {}".format(output))
    click.echo("  {} (strategy, python backend: the model clients call)".format(names[0]))
    for model in names[1:]:
        click.echo("  {} (engine)".format(model))


@triton.command("serve")
@click.argument("repository", metavar="MODEL_REPOSITORY")
@click.option("--tritonserver", "binary", default=None, metavar="PATH",
              help="The tritonserver binary (default: the one on PATH).")
@click.option("--model", "models", multiple=True, metavar="NAME",
              help="Load only these models (repeat; default: every model of the repository).")
@click.option("--address", default="0.0.0.0", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")
@click.option("--http-port", default=8000, show_default=True, type=int)
@click.option("--grpc-port", default=8001, show_default=True, type=int)
@click.option("--metrics-port", default=8002, show_default=True, type=int)
@click.option("--backend-directory", default=None, metavar="FOLDER",
              help="Triton's backends (default: Triton's own, or the nvidia-pytriton wheel's).")
@click.option("--python-env", default=None, metavar="VENV",
              help="A virtualenv of the Python backend's Python with the packages the strategy "
                   "model imports (numpy, onnxruntime, pyyaml, xxhash); default for the "
                   "nvidia-pytriton wheel's server: the virtualenv it is installed in.")
@click.option("--log", "log_path", default=None, metavar="FILE",
              help="Append the server's log here (default: this terminal).")
@click.option("--ready-timeout-s", default=120.0, show_default=True, type=float,
              help="Give up when the server is not ready after this long.")
def serve(repository, binary, models, address, http_port, grpc_port, metrics_port,
          backend_directory, python_env, log_path, ready_timeout_s):
    """Start a local tritonserver on MODEL_REPOSITORY, wait until it is ready (its health
    endpoint), and keep it running until Ctrl-C or SIGTERM, which stop it cleanly (no Python
    backend stub left behind).

    The nvidia-pytriton wheel's server (x86-64) works too: give --tritonserver
    VENV/lib/python3.X/site-packages/pytriton/tritonserver/bin/tritonserver; VENV needs numpy < 2
    and the strategy model's packages (`make triton-env` makes one: .venv-triton).
    """
    from toolkit.triton.server import ServerConfig, TritonServer
    for port in (http_port, grpc_port, metrics_port):
        if not 0 < port < 65536:
            raise InputError("ports must be within 1 .. 65535, got {}".format(port))
    config = ServerConfig(repository, binary, http_port, grpc_port, metrics_port, address, models,
                          backend_directory, python_env, log_path, ready_timeout_s)
    server = TritonServer(config)
    stop = []
    previous = {s: signal.signal(s, lambda number, frame: stop.append(number))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        if server.wait_ready(should_stop=lambda: bool(stop)):
            click.echo("ready: {} (HTTP), {} (gRPC), metrics on port {}; Ctrl-C stops".format(
                config.http_url, config.grpc_url, metrics_port), err=True)
        while not stop and server.poll() is None:
            time.sleep(0.2)
    finally:
        code = server.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    if not stop:
        raise ToolkitError("tritonserver stopped by itself with exit code {}".format(code))
    click.echo("stopped", err=True)
