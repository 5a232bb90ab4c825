"""The README.md written into an exported model repository."""

_TEXT = """# Triton model repository: {model}

Written by `toolkit triton export`. Clients call **`{model}`** (Python backend: the deployment's
preprocessing, strategy and memo, with its engines in-process). Input `images`: float32 NCHW images
as the data set gives them, any batch up to `max_batch_size`; outputs `labels` (int64),
`confidence` (float32) and `probs` (float32 per class; `labels.txt` names the classes).
{engines}
The strategy model imports the toolkit: `pip install /path/to/toolkit-source` into the Python that
Triton's Python backend runs, or name the source folder in `TOOLKIT_PYTHONPATH` (the backend's
Python starts isolated and ignores `PYTHONPATH`); it needs numpy, onnxruntime, pyyaml and xxhash
there too (and TensorRT's Python package where engines are `.engine` files).

## On a Jetson (JetPack 5/6)

Triton's JetPack release (a tarball from Triton's GitHub releases; it has the Python, ONNX Runtime
and TensorRT backends):

    export TOOLKIT_PYTHONPATH=/path/to/toolkit-source    # or pip install the toolkit
    tritonserver --model-repository=$PWD --backend-directory=/opt/tritonserver/backends \\
        --model-control-mode=explicit --load-model={model}

or `toolkit triton serve . --tritonserver /opt/tritonserver/bin/tritonserver --model {model}`.
Engines (`.plan`) are specific to the GPU and TensorRT version they were built on: export on the
device that serves them.

## On a server (x86-64 with a GPU)

    docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
        -v $PWD:/models -v /path/to/toolkit-source:/toolkit -e TOOLKIT_PYTHONPATH=/toolkit \\
        nvcr.io/nvidia/tritonserver:<yy.mm>-py3 \\
        sh -c "pip install numpy'<2' onnxruntime pyyaml xxhash && \\
               tritonserver --model-repository=/models --model-control-mode=explicit \\
               --load-model={model}"

Then, from any machine: `toolkit run --triton http://HOST:8000 {model} --data digits:test -o
predictions.csv` (or `grpc://HOST:8001`). Health: `curl HOST:8000/v2/health/ready`; metrics
(Prometheus): `HOST:8002/metrics`.
"""


def readme_text(model, engine_models):
    engines = ""
    if engine_models:
        engines = ("\nEach engine is also a model of its own ({}): `tensorrt_plan` for TensorRT "
                   "engines, `onnxruntime_onnx` for ONNX; load them with `--load-model` when a "
                   "client wants one engine alone.\n".format(", ".join(
                       "`{}`".format(m) for m in engine_models)))
    return _TEXT.format(model=model, engines=engines)
