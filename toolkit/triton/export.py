"""``toolkit triton export``: a deployment spec -> a Triton model repository.

Layout (``MODEL`` defaults to the spec's file name without ``.yaml``)::

    model_repository/
      README.md                      how to serve it on a Jetson and on a server
      MODEL/                         the strategy: Python backend, the model clients call
        config.pbtxt  labels.txt
        1/model.py  1/deploy.yaml  1/engines/<engine files>
      MODEL_<engine>/                each engine: tensorrt_plan or onnxruntime_onnx
        config.pbtxt  1/model.plan | 1/model.onnx

The strategy model runs its engines in its own process (see docs/triton.md for why, measured); the
engine models serve clients that want one engine alone.
"""
import os
import shutil
import tempfile

from basics.errors import InputError
from basics.lazy import lazy_import
from toolkit.triton.engine_model import EngineModel
from toolkit.triton.model_config import BatchingConfig, ModelConfig, TensorConfig
from toolkit.triton.repository_readme import readme_text

INPUT_NAME = "images"
DEFAULT_PREFERRED_BATCH = (8, 32)


class ExportOptions(object):
    """``model_name`` (None: the spec's file name), the strategy's ``max_batch``, dynamic batching
    (``preferred_batch`` sizes, None: 8 and 32 where they fit; ``queue_delay_us``), ``instances`` per model, and whether to write
    the ``engine_models`` too; ``dynamic_batching`` False: each request runs alone."""

    def __init__(self, model_name=None, max_batch=64, preferred_batch=None, queue_delay_us=500,
                 instances=1, engine_models=True, dynamic_batching=True):
        if int(max_batch) < 1:
            raise InputError("--max-batch must be at least 1, got {}".format(max_batch))
        if not preferred_batch:  # None: the defaults that fit
            preferred_batch = [s for s in DEFAULT_PREFERRED_BATCH if s <= int(max_batch)] or [
                int(max_batch)]
        bad = [s for s in preferred_batch if not 1 <= int(s) <= int(max_batch)]
        if bad:
            raise InputError("--preferred-batch sizes must be within 1 .. --max-batch ({}), got "
                             "{}".format(max_batch, ", ".join(str(s) for s in bad)))
        if int(queue_delay_us) < 0:
            raise InputError("--queue-delay-us must be at least 0, got {}".format(queue_delay_us))
        if int(instances) < 1:
            raise InputError("--instances must be at least 1, got {}".format(instances))
        self.model_name = model_name
        self.max_batch = int(max_batch)
        self.preferred_batch = tuple(int(s) for s in preferred_batch)
        self.queue_delay_us = int(queue_delay_us)
        self.instances = int(instances)
        self.engine_models = bool(engine_models)
        self.dynamic_batching = bool(dynamic_batching)


def default_model_name(spec_path):
    """``deploy.yaml`` -> ``deploy``."""
    return os.path.splitext(os.path.basename(spec_path))[0]


def check_model_name(name):
    ok = name and all(c.isalnum() or c in "-_" for c in name)
    if not ok:
        raise InputError("model name {!r}: use letters, digits, '-' and '_' only".format(name))
    return name


def export_repository(spec_path, out_dir, options=None):
    """Write the repository to ``out_dir`` (which must not exist or be empty; it appears whole or
    not at all). Returns the list of model names written, the strategy's first."""
    from toolkit.deployment import load_spec
    options = options or ExportOptions()
    name = check_model_name(options.model_name or default_model_name(spec_path))
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise InputError("{} already exists and is not an empty folder; give a new one".format(
            out_dir))
    raw = _read_yaml(spec_path)
    deployment = load_spec(spec_path)
    try:
        engines = {n: EngineModel.from_file(ref.path) for n, ref in deployment.spec.engines.items()}
        parent = os.path.dirname(os.path.abspath(out_dir))
        if not os.path.isdir(parent):
            raise InputError("no such folder: {}".format(parent))
        staging = tempfile.mkdtemp(prefix=".triton-export-", dir=parent)
        try:
            names = _write(staging, name, raw, deployment, engines, options)
            if os.path.isdir(out_dir):
                os.rmdir(out_dir)
            os.chmod(staging, 0o777 & ~_umask())
            os.replace(staging, out_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        deployment.close()
    return names


def _write(root, name, raw, deployment, engines, options):
    from basics.fileio import write_text_atomic
    names = [name]
    version = os.path.join(root, name, "1")
    os.makedirs(os.path.join(version, "engines"))
    spec = dict(raw)
    spec["engines"] = {}
    raw_engines = {str(k): v for k, v in raw["engines"].items()}
    for engine_name, ref in deployment.spec.engines.items():
        target = "engines/{}{}".format(engine_name, os.path.splitext(ref.path)[1].lower())
        _copy_with_sidecar(ref.path, os.path.join(version, target))
        entry = raw_engines[engine_name]
        entry = dict(entry) if isinstance(entry, dict) else {}
        entry["path"] = target
        spec["engines"][engine_name] = entry
    memo = spec.get("memo")
    if isinstance(memo, dict) and "file" in memo:
        memo = dict(memo)
        del memo["file"]  # the model folder may be read-only; the server's memo lives in memory
        spec["memo"] = memo
    yaml = lazy_import("yaml", "writing deployment specs")
    write_text_atomic(os.path.join(version, "deploy.yaml"),
                      yaml.safe_dump(spec, default_flow_style=False, sort_keys=False))
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "python_model.py"),
                    os.path.join(version, "model.py"))
    class_names = _class_names(deployment)
    write_text_atomic(os.path.join(root, name, "labels.txt"), "".join(
        "{}\n".format(c) for c in class_names))
    write_text_atomic(os.path.join(root, name, "config.pbtxt"),
                      strategy_config(name, deployment, class_names, options).to_pbtxt())
    if options.engine_models:
        for engine_name, engine in sorted(engines.items()):
            model = "{}_{}".format(name, engine_name)
            folder = os.path.join(root, model, "1")
            os.makedirs(folder)
            with open(os.path.join(folder, engine.filename), "wb") as handle:
                handle.write(engine.read_bytes())
            config = engine.config(model, options.max_batch, options.queue_delay_us,
                                   options.instances)
            write_text_atomic(os.path.join(root, model, "config.pbtxt"), config.to_pbtxt())
            names.append(model)
    write_text_atomic(os.path.join(root, "README.md"), readme_text(name, names[1:]))
    return names


def strategy_config(name, deployment, class_names, options):
    """The strategy model's :class:`ModelConfig` (Python backend, dynamic batching)."""
    prep = deployment.preprocessing
    channels, height, width = deployment.input_shape
    if prep.channel_order is not None:
        channels = -1  # the preprocessing converts whatever channels come in
    if prep.resize_hw is not None:
        height = width = -1  # ... and resizes whatever size
    outputs = [TensorConfig("labels", "int64", [1]), TensorConfig("confidence", "float32", [1]),
               TensorConfig("probs", "float32", [len(class_names)], label_filename="labels.txt")]
    return ModelConfig(
        name, [TensorConfig(INPUT_NAME, "float32", [channels, height, width])], outputs,
        options.max_batch,
        backend="python", batching=BatchingConfig(options.preferred_batch, options.queue_delay_us)
        if options.dynamic_batching else None,
        instance_kind="KIND_CPU", instance_count=options.instances,
        parameters={"spec": "deploy.yaml", "strategy": deployment.describe(),
                    "class_names": deployment.class_names and [str(c) for c in
                                                               deployment.class_names]},
        comments=["toolkit deployment: {}".format(deployment.describe()),
                  "input: float32 NCHW images as the data set gives them; the model preprocesses"])


def _class_names(deployment):
    count = deployment.strategy.num_classes
    names = deployment.class_names
    if names and (count is None or len(names) == count):
        return [str(n) for n in names]
    if count is None:
        raise InputError("the deployment's number of classes is unknown (dynamic output); "
                         "add class names to the model's metadata")
    return [str(i) for i in range(count)]


def _copy_with_sidecar(path, target):
    """The engine or ONNX file and its sidecar (engine facts, or the ONNX's metadata)."""
    if path.lower().endswith(".onnx"):
        from engines.model_metadata import sidecar_path
    else:
        from engines.engine_file import sidecar_path
    shutil.copyfile(path, target)
    if os.path.isfile(sidecar_path(path)):
        shutil.copyfile(sidecar_path(path), sidecar_path(target))


def _read_yaml(path):
    yaml = lazy_import("yaml", "reading deployment specs")
    if not os.path.isfile(path):
        raise InputError("no such deployment spec: {}".format(path))
    with open(path, "rb") as handle:
        try:
            return yaml.safe_load(handle.read().decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InputError("{} is not valid YAML: {}".format(
                path, " ".join(str(exc).split()))) from None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
