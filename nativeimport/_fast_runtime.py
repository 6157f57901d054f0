"""The fast binder at import time: load this interpreter's wrapper extension from an entry.

The build side (generating and compiling the wrapper) is :mod:`nativeimport._bind_fast`.
When the wrapper serves every function, the entry's light binding (enums,
what was left out) is all a module needs beside it, and cffi is not imported
at all; otherwise the cffi binding serves what the wrapper cannot.
"""

from __future__ import annotations

import os
import sys

# importlib.machinery's classes, without importing importlib into every process
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import ExtensionFileLoader

from ._entry import FAST_FILE, LIBRARY_FILE, LIGHT_FILE, entry_file, fast_retry_due
from ._stored import check_elf, exec_stored

TYPE_CHECKING = False
if TYPE_CHECKING:
    import enum
    from collections.abc import Callable, Sequence
    from typing import Any, Optional

__all__ = ["OnFirstUse", "bind_light", "bind_wrapper", "int_enum", "load_extension", "wants_wrapper"]


def wants_wrapper(entry: str, binder: str) -> bool:
    """Whether this interpreter should have a fast wrapper in ``entry`` that is not there yet."""
    return (sys.implementation.name == "cpython" and binder == "auto"
            and not os.path.exists(entry_file(entry, FAST_FILE))
            and fast_retry_due(entry))


def load_extension(entry: str, binder: str) -> Any:
    """This interpreter's wrapper module from ``entry``; None where it cannot serve (another
    interpreter, the cffi binder asked for, no wrapper could be built)."""
    if sys.implementation.name != "cpython" or binder == "cffi":
        return None
    path = entry_file(entry, FAST_FILE)
    if not os.path.exists(path):
        return None
    check_elf(path)
    loader = ExtensionFileLoader("_nativeimport_fast", path)
    return loader.create_module(ModuleSpec("_nativeimport_fast", loader, origin=path))


def bind_wrapper(extension: Any, library: str, module_name: str,
                 provider: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Bind the wrapper to ``library``: (its functions, their GIL-releasing variants, the GIL-keeping
    variants of those taking callbacks, which release it by default). ``provider`` returns the cffi
    namespace, for the arguments only cffi converts. A wrapper an earlier version built has no third."""
    bound = extension.bind(library, module_name, provider)
    return bound[0], bound[1], bound[2] if len(bound) > 2 else {}


def bind_light(entry: str, module_name: str, extension: Any, cffi_namespace: Callable[[], dict[str, Any]]
               ) -> Optional[tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any]]:
    """Bind through the wrapper alone when it serves every function: (namespace, GIL-releasing variants,
    GIL-keeping variants, what was left out); None when some export needs cffi.

    ``cffi_namespace`` makes the cffi binding, called only if something needs it.
    Not through a module ``__getattr__``: CPython stops specialising attribute
    loads on a module that has one, which would cost every ``mod.f()`` call ~35 ns.
    """
    light = exec_stored(entry, LIGHT_FILE)
    if not light.ALL_FAST:
        return None
    library = entry_file(entry, LIBRARY_FILE)
    check_elf(library)
    kept, released, keeping = bind_wrapper(extension, library, module_name, cffi_namespace)
    namespace: dict[str, Any] = dict(getattr(light, "CONSTANTS", {}))  # #define constants (absent in older entries)
    namespace.update(kept)
    if light.ENUMS:
        for name, members, doc in light.ENUMS:
            if name:
                namespace[name] = int_enum(name, members, module_name, doc)
            namespace.update(members)
    namespace["__ffi__"] = OnFirstUse(lambda: cffi_namespace()["__ffi__"])
    namespace["__lib__"] = OnFirstUse(lambda: cffi_namespace()["__lib__"])
    return namespace, released, keeping, light.SKIPPED


# C enums become enum.IntEnum here, for both binders (the cffi binding calls _cffi_runtime.int_enum, this).
# Here, not in a module of their own, because every hit of a module with an enum makes one: importing even
# a tiny module costs about as much as making the enum. The functional API (``IntEnum(name, members)``)
# runs the enum metaclass's whole class-body protocol, ~0.1-0.2 ms per enum; CPython 3.11+ makes its own
# enums (``re.RegexFlag``, ``http.HTTPStatus``) through ``enum._simple_enum``, which builds the same class
# in about half of that. That decorator is private, so it is used only where it exists and only for member
# names it treats as the functional API does; anything else takes the functional API.
def int_enum(name: str, members: Sequence[tuple[str, int]], module: str, doc: str) -> type[enum.IntEnum]:
    """A C enum as an :class:`enum.IntEnum` (aliases allowed, as in C): the same class either way."""
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


class OnFirstUse:
    """Stands for an object made the first time one of its attributes is used (``mod.__ffi__.new``)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._made: Any = None
        self.then: list[Callable[[Any], None]] = []  # told of the object once made (pickling's cdata reducers)

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            self._made = self._make()
            for tell in self.then:
                tell(self._made)
        return getattr(self._made, name)
