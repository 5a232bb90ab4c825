"""Stage caching: a stage's outputs are reused when its inputs (settings, the files it reads, the
toolkit's version) hash to the key stored beside them; ``fresh`` redoes every stage."""
import hashlib
import json
import os

from basics import __version__
from basics.fileio import sha256_file, write_json_atomic

STAMP = ".stage.json"


def stage_key(name, settings, input_files=()):
    """sha256 over the stage's name, its settings (JSON-able), the toolkit version and the
    content of every input file."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"stage": name, "settings": settings, "version": __version__},
                             sort_keys=True, default=str).encode("utf-8"))
    for path in sorted(input_files):
        digest.update(os.path.basename(path).encode("utf-8"))
        digest.update(sha256_file(path).encode("ascii"))
    return digest.hexdigest()


class StageCache(object):
    """Runs stages in folders; ``run(folder, name, settings, inputs, work)`` calls ``work()``
    (which writes into ``folder`` and returns a JSON-able result) unless ``folder`` holds a stamp
    with the same key and every output file it lists still exists."""

    def __init__(self, fresh=False, log=lambda line: None):
        self.fresh = fresh
        self.log = log
        self.hits = []
        self.misses = []

    def run(self, folder, name, settings, work, input_files=()):
        key = stage_key(name, settings, input_files)
        stamp_path = os.path.join(folder, STAMP)
        stamp = None if self.fresh else _read(stamp_path)
        if stamp is not None and stamp.get("key") == key and all(
                os.path.isfile(os.path.join(folder, f)) for f in stamp.get("outputs", [])):
            self.hits.append(name)
            self.log("{}: reused ({})".format(name, folder))
            return stamp["result"]
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(stamp_path):
            os.remove(stamp_path)  # a stage interrupted from here on is redone next time
        result = work()
        outputs = sorted(f for f in os.listdir(folder)
                         if f != STAMP and os.path.isfile(os.path.join(folder, f)))
        write_json_atomic(stamp_path, {"key": key, "stage": name, "outputs": outputs,
                                       "result": result})
        self.misses.append(name)
        return result


def _read(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
