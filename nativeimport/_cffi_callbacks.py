"""Function pointers in the generated cffi bindings: native functions and Python callables as C callbacks.

A function-pointer argument takes ``None``, a native function (a cffi wrapper,
a fast wrapper, or a cdata function: its C address is passed, no Python in
between) or a Python callable, which becomes a cffi callback converting its
arguments like results and its return value like an argument. The callback is
cached under the Python function and holds it only weakly, so it lives as long
as the function does: for the call when the function is a temporary, as long
as the caller keeps it when C stores the pointer. An exception a callback
raises is kept and raised again when the C function that took the callback
returns; one raised where no such call is in progress is reported as
unraisable. Imported only by bindings that have function pointers.
"""

from __future__ import annotations

import sys
from _thread import _local  # threading.local without importing threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["FAST_CALLS", "CallbackSpec", "begin_calls", "end_calls", "function_pointer", "is_native", "record_error",
           "unraisable", "with_callbacks"]


class CallbackSpec:
    """What a function-pointer parameter (or field) accepts, and how a Python callable is called from C.

    ``args`` holds, per callback parameter, ``"string"`` (``const char *``, given as str),
    ``"pointer"`` (NULL given as None) or ``""`` (as cffi converts it); ``result`` is
    ``"bool"``, ``"pointer"``, ``"void"`` or ``""``.
    """

    __slots__ = ("args", "ctype", "made", "result", "what")

    def __init__(self, ffi: Any, cdecl: str, args: Sequence[str], result: str, what: str) -> None:
        import weakref

        self.ctype = ffi.typeof(cdecl)
        self.args = tuple(args)
        self.result = result
        self.what = what
        # A Python function's callback lives as long as the function does (so C may keep it while
        # the user holds the function); one made for a temporary (a lambda) lives for the call.
        self.made: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def function_pointer(ffi: Any, value: Any, spec: CallbackSpec) -> Any:
    """A function-pointer argument: None, a native function (its C address), or a Python callable."""
    if value is None:
        return ffi.NULL
    try:
        made = spec.made.get(value)  # a function seen before: its C address, or the callback made for it
        cacheable = not isinstance(value, ffi.CData)  # a cdata would be its own value: never collected
    except TypeError:  # not weakly referenceable: a callback for this call only
        made, cacheable = None, False
    if made is not None:
        return made
    native = _native_address(ffi, value)
    if native is not None:
        held = ffi.typeof(native)
        if held is spec.ctype:
            made = native
        elif held.kind == "function" and held.cname == spec.ctype.cname:
            made = ffi.cast(spec.ctype, native)  # the same signature, from another module
        else:
            raise TypeError(f"{spec.what}: expected a function {spec.ctype.cname!r}, "
                            f"not one of type {held.cname!r}")
    elif not callable(value):
        raise TypeError(f"{spec.what}: expected a function (native or Python), not {type(value).__name__}")
    elif not cacheable:
        return _callback(ffi, value, spec)
    else:
        import weakref

        made = _callback(ffi, value, spec, weakref.ref(value))
    if cacheable:
        spec.made[value] = made
    return made


def _native_address(ffi: Any, value: Any) -> Any:
    """The C function behind ``value`` if it is a cdata function pointer or a function nativeimport bound."""
    if isinstance(value, ffi.CData):
        return value
    native = getattr(value, "__native__", None)  # a cffi wrapper
    if native is not None:
        return native
    module = _fast_function_module(value)
    return None if module is None else getattr(module.__lib__, value.__name__)  # a fast wrapper: its symbol


def _fast_function_module(value: Any) -> Any:
    """The module nativeimport bound ``value`` into as one of its fast functions, or None."""
    module = sys.modules.get(getattr(value, "__module__", None) or "")
    name = getattr(value, "__name__", "")
    exports = getattr(module, "__native_exports__", ())
    if module is None or name not in exports:
        return None
    variants = (getattr(module, "__native_release_gil__", {}), getattr(module, "__native_keep_gil__", {}))
    if module.__dict__.get(name) is not value and all(v.get(name) is not value for v in variants):
        return None
    return module


def is_native(value: Any) -> bool:
    """Whether ``value`` is a function nativeimport bound (the fast wrapper's trampolines hand those to cffi,
    which passes their C address)."""
    return getattr(value, "__native__", None) is not None or _fast_function_module(value) is not None


def _callback(ffi: Any, function: Any, spec: CallbackSpec, held: Any = None) -> Any:
    """A C callback calling ``function``; ``held`` (a weak reference to it) when the callback is cached
    under the function: then the callback must not keep the function alive, or neither would ever go."""
    string, pointer, null = "string", "pointer", ffi.NULL
    kinds = spec.args
    result = spec.result
    name = repr(function)

    def convert(value: Any, kind: str) -> Any:
        if kind == string:
            return None if value == null else ffi.string(value).decode("utf-8", "surrogateescape")
        if kind == pointer:
            return None if value == null else value
        return value

    def trampoline(*args: Any) -> Any:
        target = function if held is None else held()
        if target is None:
            raise ReferenceError(f"the Python function {name} behind this C callback no longer exists; "
                                 "keep a reference to it for as long as C may call it")
        back = target(*[convert(a, k) for a, k in zip(args, kinds)])
        if result == "bool":
            return bool(back)
        if result == pointer and back is None:
            return null
        return None if result == "void" else back

    def on_error(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
        record_error(error.with_traceback(traceback), name)

    if held is not None:
        function = None  # only the weak reference stays in the closure
    return ffi.callback(spec.ctype, trampoline, onerror=on_error)


# Per thread: the calls in progress that take Python callbacks, each with the errors its callbacks raised.
_CALLS = _local()
#: The fast wrappers' own bookkeeping of their calls in progress: each takes an exception a cffi callback
#: raised outside any cffi call and returns whether a call of that wrapper on this thread kept it.
FAST_CALLS: list[Callable[[BaseException], bool]] = []


def begin_calls() -> list[BaseException]:
    """Before a call that may run Python callbacks: where their exceptions go."""
    errors: list[BaseException] = []
    stack = getattr(_CALLS, "stack", None)
    if stack is None:
        stack = _CALLS.stack = []
    stack.append(errors)
    return errors


def end_calls(errors: list[BaseException]) -> None:
    """After the call: raise the first exception a callback raised (others are reported as unraisable)."""
    _CALLS.stack.pop()
    if errors:
        for later in errors[1:]:
            unraisable(later, "Exception ignored in a callback (an earlier one is raised)")
        raise errors[0]


def record_error(error: BaseException, function: str) -> None:
    """An exception a callback raised: kept for the call in progress on this thread, else reported."""
    stack = getattr(_CALLS, "stack", None)
    if stack:
        stack[-1].append(error)
    elif not any(keep(error) for keep in FAST_CALLS):  # nor a fast wrapper's call taking callbacks
        # C called a callback it kept, outside any call that took one: nobody to raise it to
        unraisable(error, f"Exception ignored in callback {function} called from C")


def unraisable(error: BaseException, message: str) -> None:
    """Report an exception nobody can catch, as Python reports one raised in ``__del__``."""
    import traceback

    sys.stderr.write(f"{message}:\n")
    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)


def with_callbacks(ffi: Any, pointer_type: Any, init: dict[str, Any], callbacks: dict[str, CallbackSpec]) -> Any:
    """A new instance whose function-pointer fields were given as functions; it holds their callbacks."""
    keep: list[Any] = []
    for field, spec in callbacks.items():
        if field in init:
            keep += [init[field]]  # the Python function too: its callback holds it only weakly
            init[field] = function_pointer(ffi, init[field], spec)
            keep.append(init[field])
    made = ffi.new(pointer_type, init)
    return ffi.gc(made, lambda _: keep.clear()) if keep else made  # the closure holds the callbacks
