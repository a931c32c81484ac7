"""Callback introspection: the one place that reads a user callback's bytecode.

HEADER - why this module exists and what it may break.  The consumer's hot path builds one
:class:`~rabbitstream.MessageContext` per message; a callback that never reads its context argument
can be given ``None`` instead (one object less per message).  Telling so needs the callback's code
object: :func:`context_unused` reads ``co_varnames``/``co_names``/``co_cellvars`` and walks
:func:`dis.get_instructions`.  Bytecode is a CPython implementation detail that changes between
versions, so:

- everything bytecode-dependent is here and nowhere else;
- the answer is conservative: anything not understood (not a plain function, ``*args``, a closure
  capturing the parameter, frame access, another interpreter) gives ``False``, i.e. the context is
  built as usual - a wrong ``False`` only costs speed, never correctness;
- ``core/tests/test_introspect.py`` (and ``test_consumer_hotpath.py``) run on every supported
  Python (nox ``tests``, 3.10-3.13) and fail if a new CPython makes the analysis unsound.
"""

from __future__ import annotations

import dis
import functools
import inspect
import types

__all__ = ["context_unused", "is_async_callable"]


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine (functions, partials, ``async __call__``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


#: Names whose use lets a function reach its own frame's locals.
_FRAME_NAMES = frozenset({"locals", "vars", "eval", "exec", "_getframe", "currentframe", "stack", "f_locals"})


def context_unused(fn: object) -> bool:
    """Whether ``fn(message, context)`` provably never reads ``context``.

    True only for a plain Python function (or bound method, or object whose class
    defines ``__call__`` as a function) with exactly two positional parameters, no
    ``*args``/``**kwargs``, whose second parameter's name appears in no instruction,
    is captured by no closure, and which names nothing that reaches frame locals
    (``locals``, ``vars``, ``eval``, ``sys._getframe`` ...).  Such a callback cannot
    tell a :class:`MessageContext` from ``None``, so the hot path passes ``None``
    and saves one object per message.  Anything uncertain gives False.
    """
    func: object = fn
    skip = 0
    if isinstance(func, types.MethodType):
        func, skip = func.__func__, 1
    elif not isinstance(func, types.FunctionType):
        call = getattr(type(func), "__call__", None)  # noqa: B004
        if not isinstance(call, types.FunctionType):
            return False
        func, skip = call, 1
    if not isinstance(func, types.FunctionType):
        return False
    code = func.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or code.co_argcount != skip + 2:
        return False
    name = code.co_varnames[skip + 1]
    if name in code.co_cellvars or _FRAME_NAMES.intersection(code.co_names):
        return False
    for ins in dis.get_instructions(code):
        val = ins.argval
        if val == name or (isinstance(val, tuple) and name in val):
            return False
    return True
