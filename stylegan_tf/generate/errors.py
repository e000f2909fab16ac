"""The one exception of the generate package."""


class GenerateError(ValueError):
    """A user-facing problem (bad flag value, bad file); the CLI prints its message as one line."""
