"""The one exception bad input raises: a single line naming the field and what it needs."""


class ConfigError(ValueError):
    """A config field or argument has a bad value. The message is one line for the user."""

    def __init__(self, field_name: str, expected: str | None, got: object, detail: str = None):
        super().__init__(detail or f"{field_name}: expected {expected}, got {got!r}")
