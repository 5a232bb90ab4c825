"""One base class for every error a user can fix; the CLI prints it as one line."""


class ToolkitError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 1)."""


class MissingDependencyError(ToolkitError):
    """An optional package is needed for this step but is not installed."""


class InputError(ToolkitError):
    """A bad file, shape, dtype, option value or data set given by the user."""


class EngineCompatibilityError(ToolkitError):
    """An engine file that this machine cannot load (other TensorRT, other GPU, corrupt)."""
