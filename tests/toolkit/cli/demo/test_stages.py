"""The demo's stage cache: reuse when the key matches, redo when anything it hashes changes."""
import os

from toolkit.cli.demo.stages import STAMP, StageCache


def _work(folder, calls, content="x"):
    def work():
        calls.append(1)
        with open(os.path.join(folder, "out.txt"), "w") as handle:
            handle.write(content)
        return {"made": content}
    return work


def test_a_stage_is_reused_until_its_settings_inputs_or_outputs_change(tmp_path):
    folder = str(tmp_path / "stage")
    source = tmp_path / "in.txt"
    source.write_text("a")
    calls = []
    cache = StageCache()
    assert cache.run(folder, "s", {"epochs": 1}, _work(folder, calls), [str(source)]) == \
        {"made": "x"}
    assert cache.run(folder, "s", {"epochs": 1}, _work(folder, calls), [str(source)]) == \
        {"made": "x"}
    assert len(calls) == 1 and cache.hits == ["s"] and cache.misses == ["s"]
    cache.run(folder, "s", {"epochs": 2}, _work(folder, calls), [str(source)])  # settings
    assert len(calls) == 2
    source.write_text("b")  # an input file's content
    cache.run(folder, "s", {"epochs": 2}, _work(folder, calls), [str(source)])
    assert len(calls) == 3
    os.remove(os.path.join(folder, "out.txt"))  # an output went missing
    cache.run(folder, "s", {"epochs": 2}, _work(folder, calls), [str(source)])
    assert len(calls) == 4
    StageCache(fresh=True).run(folder, "s", {"epochs": 2}, _work(folder, calls), [str(source)])
    assert len(calls) == 5


def test_an_interrupted_stage_is_redone(tmp_path):
    folder = str(tmp_path / "stage")
    calls = []
    cache = StageCache()
    cache.run(folder, "s", {}, _work(folder, calls))

    def interrupted():
        raise KeyboardInterrupt
    try:
        StageCache(fresh=True).run(folder, "s", {}, interrupted)
    except KeyboardInterrupt:
        pass
    assert not os.path.exists(os.path.join(folder, STAMP))  # no stamp: the next run redoes it
    cache.run(folder, "s", {}, _work(folder, calls))
    assert len(calls) == 2
