"""The version of the ``rabbitstream-core`` distribution (the one place it is written: every pyproject.toml reads it)."""

__version__ = "0.1.0"
