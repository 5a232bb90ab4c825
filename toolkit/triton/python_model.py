"""The strategy as a Triton Python-backend model (copied into the repository as ``model.py``).

Triton's dynamic batcher hands :meth:`TritonPythonModel.execute` several requests at once; they run
as ONE batch through the deployment (preprocessing, strategy, memo) loaded from the
``deploy.yaml`` beside this file, with the engines in this process (ONNX Runtime or TensorRT), and
the answers are split back per request. Input ``images``: float32 NCHW images as the data set gives
them (the deployment's preprocessing runs here); outputs ``labels`` (int64), ``confidence``
(float32) and ``probs`` (float32, one per class; ``labels.txt`` names the classes).

Needs the toolkit importable in the stub's Python: ``toolkit triton serve`` names its folder in
``TOOLKIT_PYTHONPATH``; elsewhere ``pip install`` the toolkit into the Python backend's environment.
"""
import json
import os
import sys

import numpy as np

pb_utils = None  # triton_python_backend_utils: exists only inside Triton's Python backend
OUTPUTS = ("labels", "confidence", "probs")


class TritonPythonModel(object):
    """Loads the deployment once per model instance; one strategy (and memo) per instance."""

    def initialize(self, args):
        global pb_utils
        import triton_python_backend_utils as pb_utils
        # `toolkit triton serve` names the toolkit's folder here (the stub ignores PYTHONPATH)
        for folder in reversed(os.environ.get("TOOLKIT_PYTHONPATH", "").split(os.pathsep)):
            if folder and folder not in sys.path:
                sys.path.insert(0, folder)
        from toolkit import deploy
        from toolkit.deployment import load_spec
        config = json.loads(args["model_config"])
        parameters = {k: v.get("string_value", "") for k, v in
                      config.get("parameters", {}).items()}
        here = os.path.join(args["model_repository"], str(args["model_version"]))
        self.deploy = deploy
        self.deployment = load_spec(os.path.join(here, parameters.get("spec", "deploy.yaml")))
        self.input_name = config["input"][0]["name"]

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy()
                  for r in requests]
        sizes = [len(a) for a in images]
        try:
            batch = images[0] if len(images) == 1 else np.concatenate(images)
            result = self.deployment.strategy.classify(
                self.deploy.prepare_images(self.deployment, batch))
        except Exception as exc:  # noqa: BLE001 - every request gets the error, the model stays up
            error = pb_utils.TritonError("{}: {}".format(type(exc).__name__, exc))
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses, start = [], 0
        for request, size in zip(requests, sizes):
            end = start + size
            wanted = request.requested_output_names() or OUTPUTS  # none named: all of them
            tensors = []
            if "labels" in wanted:
                tensors.append(pb_utils.Tensor(
                    "labels", result.labels[start:end].astype(np.int64).reshape(-1, 1)))
            if "confidence" in wanted:
                tensors.append(pb_utils.Tensor(
                    "confidence", result.confidence[start:end].astype(np.float32).reshape(-1, 1)))
            if "probs" in wanted:
                tensors.append(pb_utils.Tensor(
                    "probs", np.ascontiguousarray(result.probs[start:end], dtype=np.float32)))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start = end
        return responses

    def finalize(self):
        self.deployment.close()
