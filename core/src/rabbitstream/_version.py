"""The version of every rabbitstream distribution: written here only, read by every pyproject.toml."""

__version__ = "0.1.0"
