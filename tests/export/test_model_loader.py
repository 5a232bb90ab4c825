import pickle

import pytest

torch = pytest.importorskip("torch")

from basics.errors import InputError  # noqa: E402
from export import models  # noqa: E402
from export.model_loader import load_model, load_weights, resolve_factory  # noqa: E402


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def saved_weights(tmp_path):
    torch.manual_seed(1)
    source = models.tiny_cnn()
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), str(path))
    return source, str(path)


def test_factory_spec_gives_eval_module():
    model = load_model("export.models:tiny_cnn")
    assert isinstance(model, torch.nn.Module) and not model.training
    assert isinstance(load_model("export.models:SimpleCNN"), models.SimpleCNN)  # a class works too


def test_weights_are_loaded(saved_weights):
    source, path = saved_weights
    assert _same_weights(load_model("export.models:tiny_cnn", weights=path), source)


def test_checkpoint_dict_and_dataparallel_prefix(saved_weights, tmp_path):
    source, _ = saved_weights
    wrapped = {"epoch": 3, "state_dict": {"module." + k: v for k, v in source.state_dict().items()}}
    path = tmp_path / "ckpt.pt"
    torch.save(wrapped, str(path))
    assert _same_weights(load_model("export.models:tiny_cnn", weights=str(path)), source)


def test_python_file_factory(tmp_path, monkeypatch):
    (tmp_path / "my_net.py").write_text(
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Linear(4, 2)\n")
    model = load_model(str(tmp_path / "my_net.py") + ":build")
    assert isinstance(model, torch.nn.Linear)
    monkeypatch.chdir(tmp_path)  # a module in the current folder imports by name
    assert isinstance(load_model("my_net:build"), torch.nn.Linear)


def test_torchscript_file(tmp_path):
    source = models.tiny_cnn().eval()
    path = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(source), str(path))
    model = load_model(str(path))
    assert isinstance(model, torch.jit.ScriptModule) and not model.training
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), source(x))


def test_module_instance_passes_through(saved_weights):
    source, path = saved_weights
    model = models.tiny_cnn()
    assert load_model(model, weights=path) is model and _same_weights(model, source)


@pytest.mark.parametrize("spec, words", [
    ("export.models:nope", "has no attribute 'nope'"),
    ("export.models:SimpleCNN.nope", "has no attribute 'nope'"),
    ("no_such_pkg.mod:build", "no module named 'no_such_pkg.mod'"),
    ("export.no_such_module:build", "no module named"),
    ("export.models:FACTORIES", "not a callable factory"),
    ("export.models:", "must look like"),
    (":small_cnn", "must look like"),
    ("just_a_name", "neither an existing TorchScript file"),
    ("", "a model is"),
    ("missing_file.py:build", "no such Python file"),
])
def test_factory_specs_that_do_not_resolve(spec, words):
    with pytest.raises(InputError, match=words):
        load_model(spec)


def test_factory_that_raises_or_returns_no_module(tmp_path):
    (tmp_path / "bad.py").write_text(
        "def boom():\n"
        "    raise ValueError('no good')\n"
        "def number():\n"
        "    return 42\n")
    with pytest.raises(InputError, match="raised ValueError: no good"):
        load_model(str(tmp_path / "bad.py") + ":boom")
    with pytest.raises(InputError, match="returned int, not a torch.nn.Module"):
        load_model(str(tmp_path / "bad.py") + ":number")


def test_module_that_fails_to_import(tmp_path, monkeypatch):
    (tmp_path / "broken_mod.py").write_text("import not_installed_thing\n")
    (tmp_path / "raising_mod.py").write_text("raise RuntimeError('bad config')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="importing 'broken_mod' failed"):
        load_model("broken_mod:build")
    with pytest.raises(InputError, match="RuntimeError: bad config"):
        load_model("raising_mod:build")
    with pytest.raises(InputError, match="RuntimeError: bad config"):
        resolve_factory(str(tmp_path / "raising_mod.py") + ":build")


def test_not_a_torchscript_file(tmp_path, saved_weights):
    _, weights_path = saved_weights
    with pytest.raises(InputError, match="is not a TorchScript file") as info:
        load_model(weights_path)  # a state dict given as the model
    assert "\n" not in str(info.value)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="is not a TorchScript file"):
        load_model(str(junk))


def test_missing_weights_file(tmp_path):
    with pytest.raises(InputError, match="no such weights file"):
        load_model("export.models:tiny_cnn", weights=str(tmp_path / "none.pt"))


def test_weights_of_another_model(saved_weights):
    _, path = saved_weights  # tiny_cnn weights
    with pytest.raises(InputError, match="has shape .* in the file but .* in the model"):
        load_model("export.models:small_cnn", weights=path)
    with pytest.raises(InputError, match=r"18 missing key\(s\) \(features.2.0.weight, .* and 15 more\)"):
        load_model("export.models:depthwise_cnn", weights=path)


def test_weights_with_missing_or_extra_keys(tmp_path):
    state = models.tiny_cnn().state_dict()
    partial = dict(list(state.items())[:-1])
    torch.save(partial, str(tmp_path / "partial.pt"))
    with pytest.raises(InputError, match=r"1 missing key\(s\) \(classifier.bias\)"):
        load_weights(models.tiny_cnn(), str(tmp_path / "partial.pt"))
    extra = dict(state, **{"head.weight": torch.zeros(1)})
    torch.save(extra, str(tmp_path / "extra.pt"))
    with pytest.raises(InputError, match=r"1 unexpected key\(s\) \(head.weight\)"):
        load_weights(models.tiny_cnn(), str(tmp_path / "extra.pt"))


def test_weights_that_are_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(1)], str(tmp_path / "list.pt"))
    with pytest.raises(InputError, match="hold list, not a state dict"):
        load_weights(models.tiny_cnn(), str(tmp_path / "list.pt"))
    torch.save({}, str(tmp_path / "empty.pt"))
    with pytest.raises(InputError, match="an empty dict"):
        load_weights(models.tiny_cnn(), str(tmp_path / "empty.pt"))
    state = dict(models.tiny_cnn().state_dict())
    state["classifier.bias"] = 1.5
    torch.save(state, str(tmp_path / "number.pt"))
    with pytest.raises(InputError, match="'classifier.bias' is a float, not a tensor"):
        load_weights(models.tiny_cnn(), str(tmp_path / "number.pt"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weights_refused_by_weights_only(tmp_path):
    torch.save(models.tiny_cnn(), str(tmp_path / "whole.pt"))  # a pickled module runs code
    with pytest.raises(InputError, match="weights_only=True"):
        load_weights(models.tiny_cnn(), str(tmp_path / "whole.pt"))
    (tmp_path / "junk.pt").write_bytes(pickle.dumps("text")[:3])
    with pytest.raises(InputError, match="cannot read weights"):
        load_weights(models.tiny_cnn(), str(tmp_path / "junk.pt"))
