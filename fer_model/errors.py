"""The package's documented exceptions: every failure a user can cause is one of these."""


class FERError(Exception):
    """Base class for errors raised by `fer_model`."""


class InvalidImageError(FERError, ValueError):
    """The input is not a usable image: unreadable, truncated, empty, too large or of an unknown type."""


class ModelLoadError(FERError):
    """Weights or config could not be loaded: missing files, pickle weights, or weights that do not fit the config."""


class InvalidVideoError(FERError, ValueError):
    """The input is not a readable video: missing, not a video, corrupt, empty or too long to analyse."""


class IncompleteRunError(FERError):
    """A batch run's engine gave fewer results than it was given work (stopped, or a worker lost): what was
    done is saved, and the same run started again does the rest."""


class MissingExtraError(FERError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra to install."""


def require(module: str, feature: str, extra: str = "torch"):
    """Import `module`, or raise `MissingExtraError` saying which extra `feature` needs."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(f"{feature} needs {module}, which is not installed: "
                                f"pip install 'fer-model[{extra}]'") from err
