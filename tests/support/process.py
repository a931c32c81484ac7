"""Helpers for tests that run the CLI in a child process."""

from __future__ import annotations

import signal

__all__ = ["sigint_default"]


def sigint_default() -> None:
    """In the child (``preexec_fn``): SIGINT back to its default. A job a non-interactive shell starts in
    the background (as CI may start this suite) inherits SIGINT ignored, and Python keeps it ignored;
    Ctrl-C is what the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
