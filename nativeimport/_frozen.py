"""Frozen value classes declared by annotated fields, without the ``dataclasses`` module.

The package's value types (the Interface model, the driver API's requests and
results, a build's dependencies) are what a new module's build makes first. As
dataclasses they cost each new module's import about 10 ms of its ~35 before
gcc's ~25 could be matched: ``dataclasses`` imports ``inspect`` (and with it
``ast``, ``dis``, ``tokenize``), and compiles every class's methods from
generated source when its module is imported.

:func:`frozen` gives these classes what the package and drivers use of a
frozen dataclass: construction by position or keyword with defaults, ``==``
and ``hash`` by fields, ``repr``, assignment refused, ``__post_init__``,
``__match_args__``; :func:`replace` (also ``copy.replace`` from Python 3.13)
copies one with changes. ``dataclasses``'
own functions (``replace``, ``fields``, ``asdict``, ``is_dataclass``) accept
them too, since plugins written against earlier releases call
``dataclasses.replace``: the first look at ``__dataclass_fields__`` imports
``dataclasses`` and describes the fields then.
"""

from __future__ import annotations

import operator

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs ~2 ms, and this module is on a new module's path
    from typing import Any, Callable, TypeVar

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**_options: object) -> object:
        return lambda function: function

__all__ = ["FrozenInstanceError", "frozen", "replace"]


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen value (``dataclasses.FrozenInstanceError`` for these classes)."""


@dataclass_transform(frozen_default=True)
def frozen(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen value class of its annotated fields, in declaration order.

    A field's class attribute of the same name is its default. Defaults are
    shared between instances, so only immutable ones make sense (as with
    dataclasses, which refuses lists, dicts and sets).
    """
    annotations: dict[str, Any] = cls.__annotations__  # its own: no frozen class derives from another
    names = tuple(name for name, annotation in annotations.items() if not str(annotation).startswith("ClassVar"))
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    required = frozenset(names) - defaults.keys()
    known = frozenset(names)
    values: Callable[[Any], Any] = operator.attrgetter(*names) if names else (lambda _value: ())
    title = cls.__qualname__
    post_init = getattr(cls, "__post_init__", None)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{title}() takes {len(names)} positional arguments but {len(args)} were given")
        state = self.__dict__
        state.update(defaults)
        state.update(zip(names, args))
        if kwargs:
            unknown = kwargs.keys() - known
            if unknown:
                raise TypeError(f"{title}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
            twice = kwargs.keys() & names[:len(args)]
            if twice:
                raise TypeError(f"{title}() got multiple values for argument {sorted(twice)[0]!r}")
            state.update(kwargs)
        if len(state) < len(names) or not required <= state.keys():
            missing = [name for name in names if name not in state]
            raise TypeError(f"{title}() missing required argument{'s' if len(missing) > 1 else ''}: "
                            + ", ".join(repr(name) for name in missing))
        if post_init is not None:
            post_init(self)

    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{title}({shown})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(values(self) == values(other))

    def __hash__(self: Any) -> int:
        return hash(values(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self: Any, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    for method in (__init__, __repr__, __eq__, __hash__, __setattr__, __delattr__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
    cls.__replace__ = replace  # type: ignore[attr-defined]  # copy.replace (Python 3.13+), as dataclasses give
    cls.__match_args__ = names  # type: ignore[attr-defined,misc]
    cls._frozen_fields = names  # type: ignore[attr-defined]
    cls.__dataclass_fields__ = _DataclassFields()  # type: ignore[attr-defined]
    return cls


def replace(value: T, **changes: Any) -> T:
    """A copy of the frozen ``value`` with ``changes`` to some of its fields (``dataclasses.replace``)."""
    names: tuple[str, ...] = type(value)._frozen_fields  # type: ignore[attr-defined]
    arguments = {name: getattr(value, name) for name in names}
    arguments.update(changes)
    return type(value)(**arguments)


class _DataclassFields:
    """``__dataclass_fields__``, made on first use: it imports dataclasses (what asks for it uses them)."""

    def __get__(self, instance: object, owner: type) -> dict[str, Any]:
        import dataclasses

        annotations = owner.__annotations__
        fields: dict[str, Any] = {}
        for name in owner._frozen_fields:  # type: ignore[attr-defined]
            field = dataclasses.field(default=owner.__dict__.get(name, dataclasses.MISSING))
            field.name = name
            field.type = annotations[name]
            field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what dataclasses' own set
            fields[name] = field
        type.__setattr__(owner, "__dataclass_fields__", fields)  # once per class
        return fields
