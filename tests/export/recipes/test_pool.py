import json
import os

import numpy as np
import pytest

from basics.errors import InputError

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from export.recipes import pool  # noqa: E402


@pytest.fixture(scope="module")
def trained_pool(small_recipe_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pool"))
    config = pool.PoolConfig(models=("tiny_cnn", "flat_cnn"), baseline="small_cnn", epochs=2)
    return pool.train_pool(small_recipe_data, out, config, progress=False)


def test_pool_writes_models_sidecars_weights_and_summary(trained_pool):
    out = trained_pool.out_dir
    summary = json.load(open(os.path.join(out, "pool.json")))
    assert summary == json.loads(json.dumps(trained_pool.to_dict()))
    assert [m["name"] for m in summary["models"]] == ["tiny_cnn", "flat_cnn", "small_cnn"]
    assert summary["baseline"] == "small_cnn"
    assert [m["role"] for m in summary["models"]] == ["pool", "pool", "baseline"]
    for entry in summary["models"]:
        for key in ("onnx", "weights"):
            assert os.path.isfile(os.path.join(out, entry[key]))
        assert os.path.isfile(os.path.join(out, entry["onnx"] + ".json"))
        assert entry["parameters"] > 0 and 0.0 <= entry["test_accuracy"] <= 1.0
    assert summary["models"][1]["source"] == "export.recipes.pool_models:flat_cnn"
    assert summary["config"]["fit"]["epochs"] == 2
    text = "\n".join(trained_pool.lines())
    assert "(baseline)" in text and "toolkit pair select" in text


def test_exported_models_reproduce_the_recorded_test_accuracy(trained_pool, small_recipe_data):
    from engines.load import load_engine
    test = small_recipe_data.test
    for entry in trained_pool.entries:
        engine = load_engine(os.path.join(trained_pool.out_dir, entry["onnx"]))
        assert engine.metadata.class_names == [str(i) for i in range(10)]
        logits = engine.infer({"input": test.images})["logits"]
        assert np.mean(np.argmax(logits, axis=1) == test.labels) == pytest.approx(
            entry["test_accuracy"], abs=1.0 / len(test))


def test_load_pool(trained_pool, tmp_path):
    assert pool.load_pool(trained_pool.out_dir)["baseline"] == "small_cnn"
    with pytest.raises(InputError, match="no pool.json"):
        pool.load_pool(str(tmp_path))
    (tmp_path / "pool.json").write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        pool.load_pool(str(tmp_path))
    (tmp_path / "pool.json").write_text('{"kind": "cbnet"}')
    with pytest.raises(InputError, match="not a pool summary"):
        pool.load_pool(str(tmp_path))


@pytest.mark.parametrize("kwargs, words", [
    ({"models": "tiny_cnn,nope"}, "unknown model"),
    ({"baseline": "nope"}, "unknown baseline"),
    ({"models": "tiny_cnn,tiny_cnn"}, "named twice"),
    ({"models": "large_cnn"}, "at least two models"),
    ({"epochs": 0}, "epochs must be a positive integer"),
])
def test_bad_pool_configs(kwargs, words):
    with pytest.raises(InputError, match=words):
        pool.PoolConfig(**kwargs)


def test_baseline_listed_among_models_is_trained_once():
    config = pool.PoolConfig(models="tiny_cnn,large_cnn", baseline="large_cnn")
    assert config.all_models == ["tiny_cnn", "large_cnn"]


def test_out_must_be_a_folder(small_recipe_data, tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        pool.train_pool(small_recipe_data, str(path), pool.PoolConfig(models="tiny_cnn",
                                                                      baseline="small_cnn"))


def test_an_interrupted_pool_loads_and_a_rerun_resumes(small_recipe_data, tmp_path, monkeypatch):
    out = str(tmp_path / "pool")
    config = pool.PoolConfig(models=("tiny_cnn", "flat_cnn"), baseline="small_cnn", epochs=1)
    real, trained = pool._train_one, []

    def interrupted(name, *args):
        if len(trained) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the second model trains
        trained.append(name)
        return real(name, *args)
    monkeypatch.setattr(pool, "_train_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pool.train_pool(small_recipe_data, out, config, progress=False)
    partial = pool.load_pool(out)
    assert [m["name"] for m in partial["models"]] == ["tiny_cnn"] and not partial["complete"]

    def counted(name, *args):
        trained.append(name)
        return real(name, *args)
    monkeypatch.setattr(pool, "_train_one", counted)
    result = pool.train_pool(small_recipe_data, out, config, progress=False)
    assert trained == ["tiny_cnn", "flat_cnn", "small_cnn"]  # tiny_cnn was not trained again
    summary = pool.load_pool(out)
    assert [m["name"] for m in summary["models"]] == ["tiny_cnn", "flat_cnn", "small_cnn"]
    assert summary["complete"] and summary["models"][0] == partial["models"][0]
    assert len(result.entries) == 3
