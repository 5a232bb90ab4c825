"""The two kinds of error (as Polygraphy keeps ``PolygraphyException`` apart from its bugs).

- :class:`ToolkitError` and its subclasses: something the user can fix (a bad file, option, data
  set or environment). The CLI prints it as one line ``error: ...`` and exits with code 1.
- Everything else, :class:`InternalError` included: a bug. The CLI prints "this is a bug", the
  traceback, and exits with code 2. Raise :class:`InternalError` for "cannot happen" states.
"""


class ToolkitError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 1)."""


class MissingDependencyError(ToolkitError):
    """An optional package is needed for this step but is not installed."""


class InputError(ToolkitError):
    """A bad file, shape, dtype, option value or data set given by the user."""


class EngineCompatibilityError(ToolkitError):
    """An engine file that this machine cannot load (other TensorRT, other GPU, corrupt)."""


class InternalError(Exception):
    """A state the toolkit's own code should never reach: a bug, not the user's doing.

    Deliberately not a :class:`ToolkitError`: the CLI prints "this is a bug", the traceback, and
    exits with code 2 (as it does for any other exception that escapes a command).
    """
