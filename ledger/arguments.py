"""The Python API's text arguments checked for their kind before any work: an app passing
`name=None` or `reason=7` gets invalid_input, not an AttributeError from deep inside, nor a
value stored that no read could decode. Times, positions and rules are checked where they
are parsed; this covers what the annotations say is text."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ledger.errors import InvalidInput
from ledger.i18n import _

T = TypeVar("T")
_TEXT, _OPTIONAL, _IDS = "str", "str | None", "list[str]"


def _wrong(value: Any, kind: str) -> bool:
    if kind == _TEXT:
        return not isinstance(value, str)
    if kind == _OPTIONAL:
        return value is not None and not isinstance(value, str)
    return isinstance(value, str) or not isinstance(value, (list, tuple)) or \
        not all(isinstance(v, str) for v in value)


def checked(method: Callable[..., T]) -> Callable[..., T]:
    """`method`, refusing a text argument (by its annotation) of another kind."""
    params = list(inspect.signature(method).parameters.values())
    checks = [(i, p.name, p.annotation) for i, p in enumerate(params) if p.annotation in (_TEXT, _OPTIONAL, _IDS)]
    if not checks:
        return method

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> T:
        for i, name, kind in checks:
            value = args[i] if i < len(args) else kwargs.get(name)
            if (i < len(args) or name in kwargs) and _wrong(value, kind):
                if kind == _IDS:
                    raise InvalidInput(_("{name} must be a list of ids, not {value}", name=name,
                                         value=repr(value)[:40]))
                raise InvalidInput(_("{name} must be text, not {value}", name=name, value=repr(value)[:40]))
        return method(*args, **kwargs)
    return call


def checked_methods(cls: type[T]) -> type[T]:
    """Every public method of `cls` `checked`."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, checked(member))
    return cls
