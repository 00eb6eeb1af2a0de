"""The package version: one place, read by pyproject.toml, `sweep.__version__` and
`sweep --version`."""

__version__ = "0.2.0"
