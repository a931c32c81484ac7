"""The version of the ``rabbitstream-core`` distribution (kept equal to ``core/pyproject.toml``)."""

__version__ = "0.1.0"
