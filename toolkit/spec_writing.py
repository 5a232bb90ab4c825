"""Writing deployment specs: the spec of a cascade over two model files, and a spec mapping
written as YAML (atomically, after validating it by parsing it back)."""
import os

from basics.fileio import write_text_atomic
from basics.lazy import lazy_import
from toolkit.spec import DeploymentSpec
from toolkit.strategies.scores import check_score


def cascade_spec(spec_path, first_path, second_path, threshold, score="max_softmax",
                 post_check=False, memo="exact", names=("first", "second")):
    """The spec mapping of a cascade over two model files, with paths relative to ``spec_path``."""
    folder = os.path.dirname(os.path.abspath(spec_path))
    first_name, second_name = names
    if first_name == second_name:
        first_name, second_name = first_name + "_a", second_name + "_b"
    data = {"version": 1,
            "engines": {first_name: os.path.relpath(os.path.abspath(first_path), folder),
                        second_name: os.path.relpath(os.path.abspath(second_path), folder)},
            "strategy": {"type": "cascade", "first": first_name, "second": second_name,
                         "threshold": float(threshold), "score": check_score(score),
                         "post_check": bool(post_check)}}
    if memo and memo != "off":
        data["memo"] = {"mode": memo}
    return data


def write_spec(path, data):
    """Write a spec mapping as YAML (atomically); it is validated by parsing it back first."""
    yaml = lazy_import("yaml", "writing deployment specs")
    DeploymentSpec.from_dict(data, os.path.dirname(os.path.abspath(path)), path)
    write_text_atomic(path, yaml.safe_dump(data, default_flow_style=False, sort_keys=False))
    return path
