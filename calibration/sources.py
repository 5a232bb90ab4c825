"""Calibration data for one ONNX model: its input, the data preprocessed the way it expects, and
fixed-size batches of it as an ONNX Runtime calibration reader.

``load_calibration_set("digits:train", "model.onnx")`` finds the model's input (from its metadata
sidecar ``model.onnx.json``, else from the ONNX itself), loads the data (bundled digits, ``.npz`` or
an image folder decoded to the input's size), applies the model's preprocessing from its metadata
and checks the result fits the input. :class:`BatchReader` hands it out batch by batch.
"""
import os

import numpy as np

from basics.errors import InputError, MissingDependencyError
from basics.lazy import is_available, lazy_import


class CalibrationSet(object):
    """``images`` (float32 NCHW, preprocessed: ready to feed), the model's ``input`` (a TensorSpec),
    its ``metadata`` (ModelMetadata or None), the data's ``name`` and ``labels`` (or None)."""

    def __init__(self, images, input_spec, metadata, name, labels=None):
        self.images = images
        self.input = input_spec
        self.metadata = metadata
        self.name = name
        self.labels = labels

    def __len__(self):
        return len(self.images)


def model_input(onnx_path):
    """``(TensorSpec, ModelMetadata or None)``: the one input of the ONNX at ``onnx_path``.

    Read from the metadata sidecar when there is one (checked against the file's sha256), else from
    the ONNX with ``onnx`` or ``onnxruntime``, whichever is installed.
    """
    from engines.model_metadata import ModelMetadata
    onnx_path = os.fspath(onnx_path)
    if not os.path.isfile(onnx_path):
        raise InputError("no such ONNX file: {}".format(onnx_path))
    metadata = ModelMetadata.for_model(onnx_path)
    has_inputs = metadata is not None and metadata.inputs
    inputs = metadata.inputs if has_inputs else _onnx_inputs(onnx_path)
    if len(inputs) != 1:
        raise InputError("calibration feeds models with one image input; {} has {}: {}".format(
            onnx_path, len(inputs), ", ".join(spec.name for spec in inputs) or "none"))
    spec = inputs[0]
    if len(spec.shape) != 4 or spec.dtype.kind != "f":
        raise InputError("calibration feeds float NCHW images; input '{}' of {} is {} {}".format(
            spec.name, onnx_path, "x".join("N" if d == -1 else str(d) for d in spec.shape),
            spec.dtype.name))
    return spec, metadata


def _onnx_inputs(onnx_path):
    from engines.base import TensorSpec
    if is_available("onnx"):
        onnx = lazy_import("onnx", "reading an ONNX model's inputs")
        try:
            model = onnx.load(onnx_path, load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise InputError("{} is not a valid ONNX model: {}".format(
                onnx_path, str(exc).strip().splitlines()[0] if str(exc).strip() else
                type(exc).__name__)) from None
        weights = set(init.name for init in model.graph.initializer)
        specs = []
        for value in model.graph.input:
            if value.name in weights:
                continue
            tensor = value.type.tensor_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type) \
                if hasattr(onnx.helper, "tensor_dtype_to_np_dtype") \
                else onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[tensor.elem_type]
            shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                     for d in tensor.shape.dim]
            specs.append(TensorSpec(value.name, shape, dtype))
        return specs
    if is_available("onnxruntime"):
        from engines.onnxruntime_backend import OnnxRuntimeEngine
        engine = OnnxRuntimeEngine(onnx_path)
        try:
            return list(engine.inputs)
        finally:
            engine.close()
    raise MissingDependencyError(
        "reading the input of {} needs its metadata sidecar ({}.json, written by `toolkit "
        "export`), onnx or onnxruntime (pip install onnx)".format(onnx_path, onnx_path))


def load_calibration_set(data, onnx_path, seed=0):
    """The :class:`CalibrationSet` for ``onnx_path`` from ``data`` (a ``load_dataset`` spec:
    ``digits:train``, ``digits16``, an ``.npz``, an image folder)."""
    from calibration.datasets import load_dataset
    spec, metadata = model_input(onnx_path)
    shape_chw = tuple(spec.shape[1:]) if -1 not in spec.shape[1:] else None
    dataset = load_dataset(data, shape_chw=shape_chw, seed=seed)
    images = dataset.images
    prep = None if metadata is None else metadata.preprocessing
    if prep is not None and not prep.is_identity:
        images = prep.apply(images)
    got = images.shape[1:]
    if any(want not in (-1, have) for want, have in zip(spec.shape[1:], got)):
        raise InputError(
            "the calibration images of {} are {} but {} takes {} (pick data of that size, or give "
            "the model a resize in its metadata preprocessing)".format(
                dataset.name, "x".join(str(d) for d in got), os.path.basename(onnx_path),
                "x".join("N" if d == -1 else str(d) for d in spec.shape)))
    return CalibrationSet(np.ascontiguousarray(images, dtype=np.float32), spec, metadata,
                          dataset.name, dataset.labels)


def load_int8_gate(onnx_path, samples, eval_data=None, max_accuracy_drop=None,
                   auto_fallback=False, seed=0, progress=False):
    """The :class:`engines.int8_gate.Int8Gate` of ``onnx_path``: ``samples`` (a CalibrationSet)
    and, with ``eval_data`` (a ``load_dataset`` spec with labels), held-out accuracy."""
    from engines.int8_gate import MAX_ACCURACY_DROP, Int8Gate
    eval_images = eval_labels = None
    if eval_data is not None:
        held_out = load_calibration_set(eval_data, onnx_path, seed=seed)
        if held_out.labels is None:
            raise InputError("the evaluation data {} has no labels: give labelled data (digits:test, an "
                             ".npz with labels, an image folder)".format(eval_data))
        eval_images, eval_labels = held_out.images, held_out.labels
    elif max_accuracy_drop is not None:
        raise InputError("a largest accuracy drop needs labelled held-out evaluation data")
    drop = MAX_ACCURACY_DROP if max_accuracy_drop is None else max_accuracy_drop
    return Int8Gate(samples.images, input_name=samples.input.name, eval_images=eval_images,
                    eval_labels=eval_labels, max_accuracy_drop=drop,
                    auto_fallback=auto_fallback, progress=progress)


class BatchReader(object):
    """ONNX Runtime's calibration-reader protocol over ``images``: ``get_next()`` returns
    ``{input_name: batch}`` (float32, exactly ``batch_size`` samples; a last partial batch is
    dropped, as TensorRT's calibrators do) or None when done; ``rewind()`` starts over.

    ``on_batch``: called with each batch handed out (e.g. a progress bar's ``update``).
    """

    def __init__(self, images, input_name, batch_size=8, max_batches=None, on_batch=None):
        from calibration.trt_calibrator import iter_batches
        self._make = lambda: iter_batches(images, batch_size, max_batches)
        self._batches = self._make()  # checks the sizes now: one-line errors before any work
        self.input_name = str(input_name)
        self.batch_size = int(batch_size)
        count = len(getattr(images, "images", images)) // self.batch_size
        self.num_batches = count if max_batches is None else min(count, int(max_batches))
        self.batches_read = 0
        self._on_batch = on_batch

    def __len__(self):
        return self.num_batches

    def get_next(self):
        batch = next(self._batches, None)
        if batch is None:
            return None
        self.batches_read += 1
        if self._on_batch is not None:
            self._on_batch(batch)
        return {self.input_name: batch}

    def rewind(self):
        self._batches = self._make()
