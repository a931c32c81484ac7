"""Callback introspection (``_consumer/_introspect.py``): sound on the running CPython.

Run on every supported Python (nox ``tests`` session, 3.10-3.13): a new bytecode that hides a read
of the context argument from :func:`context_unused` makes one of the "reads it" cases fail here.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import pytest
from rabbitstream._consumer._introspect import context_unused, is_async_callable


def _reads_attr(msg: Any, ctx: Any) -> Any:
    return ctx.offset


def _reads_in_fstring(msg: Any, ctx: Any) -> str:
    return f"{ctx}"


def _reads_in_try(msg: Any, ctx: Any) -> Any:
    try:
        return msg
    finally:
        print(ctx)


def _reads_in_walrus(msg: Any, ctx: Any) -> Any:
    if (c := ctx) is not None:
        return c
    return None


def _reads_in_generator(msg: Any, ctx: Any) -> Any:
    return sum(1 for _ in range(3) if ctx)


def _reads_in_nested_def(msg: Any, ctx: Any) -> Any:
    def inner() -> Any:
        return ctx

    return inner


def _reads_in_match(msg: Any, ctx: Any) -> Any:
    match msg:
        case b"x":
            return ctx
    return None


def _rebinds(msg: Any, ctx: Any) -> Any:
    ctx = 1
    return ctx


def _passes_on(msg: Any, ctx: Any) -> Any:
    return print(msg, ctx)


def _ignores(msg: Any, ctx: Any) -> Any:
    return len(msg) + 1


async def _ignores_async(msg: Any, ctx: Any) -> None:
    return None


READERS = [
    _reads_attr,
    _reads_in_fstring,
    _reads_in_try,
    _reads_in_walrus,
    _reads_in_generator,
    _reads_in_nested_def,
    _reads_in_match,
    _rebinds,
    _passes_on,
]


@pytest.mark.parametrize("fn", READERS, ids=lambda f: f.__name__)
def test_a_callback_reading_its_context_gets_one(fn: Any) -> None:
    assert not context_unused(fn)


def test_a_callback_ignoring_its_context_is_detected() -> None:
    assert context_unused(_ignores)
    assert context_unused(_ignores_async)


def test_anything_uncertain_is_not_unused() -> None:
    assert not context_unused(functools.partial(_ignores, b"m"))  # not a plain function
    assert not context_unused(len)
    assert not context_unused(object())
    assert not context_unused(sys._getframe)


def test_is_async_callable() -> None:
    assert is_async_callable(_ignores_async)
    assert is_async_callable(functools.partial(_ignores_async, b"m"))
    assert not is_async_callable(_ignores)
