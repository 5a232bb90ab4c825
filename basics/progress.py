"""One progress bar for every long step: a tqdm bar on stderr (cleared when done), or a silent
stand-in when disabled."""
import sys

from basics.lazy import lazy_import


class _NoBar(object):
    """Does nothing; returned when progress is disabled."""

    def update(self, count=1):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def set_description_str(self, text, refresh=True):
        pass

    def close(self):
        pass


def progress_bar(total, desc, unit, enabled=True):
    """A tqdm bar of ``total`` ``unit``s labelled ``desc`` on stderr, or a silent stand-in."""
    if not enabled:
        return _NoBar()
    tqdm = lazy_import("tqdm", "progress bars")
    return tqdm.tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                     mininterval=0.5)
