"""A C enum as an :class:`enum.IntEnum`, made as cheaply as the interpreter allows.

Every cache hit of a module with an enum makes one here, so this module is
tiny: importing the cffi binder's runtime just for this cost more than the
enum itself. The functional API (``IntEnum(name, members)``) runs the enum
metaclass's whole class-body protocol, ~0.1-0.2 ms per enum; CPython 3.11+
makes its own enums (``re.RegexFlag``, ``http.HTTPStatus``) through
``enum._simple_enum``, which builds the same class in about half of that.
That decorator is private, so it is used only where it exists and only for
member names it treats as the functional API does; anything else takes the
functional API.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import enum
    from collections.abc import Sequence

__all__ = ["int_enum"]


def int_enum(name: str, members: Sequence[tuple[str, int]], module: str, doc: str) -> type[enum.IntEnum]:
    """A C enum as an :class:`enum.IntEnum` (aliases allowed, as in C)."""
    import enum

    simple = getattr(enum, "_simple_enum", None)
    if simple is not None and name.isidentifier() and all(_plain(member) for member, _ in members):
        body: dict[str, object] = {"__module__": module, "__qualname__": name}
        body.update(members)
        simple_made: type[enum.IntEnum] = simple(enum.IntEnum)(type(name, (), body))
        simple_made.__doc__ = doc or None  # as the functional API leaves it (_simple_enum writes its own)
        return simple_made
    made = enum.IntEnum(name, list(members), module=module)  # type: ignore[misc]
    if doc:
        made.__doc__ = doc
    return made


def _plain(member: str) -> bool:
    # A name _simple_enum would keep as a class attribute (a leading underscore) or that shadows
    # something of IntEnum's (``name``, ``value``, ``real``) is left to the functional API's rules.
    import enum

    return member.isidentifier() and not member.startswith("_") and not hasattr(enum.IntEnum, member)
