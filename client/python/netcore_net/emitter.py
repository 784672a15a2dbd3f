"""EventEmitter: Node's on/once/off/emit, the way every netcore object talks.

Listeners run synchronously, in the order they were added, as in Node.
Emitting 'error' with no listener raises the error (Node throws it); the
library turns such a raise inside the event loop into the end of run(),
re-raised there, so an unhandled error never passes silently.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypeVar

from ._types import Listener

E = TypeVar("E", bound="EventEmitter")


class EventEmitter:
    def __init__(self) -> None:
        self._listeners: Dict[str, List[Listener]] = {}

    def on(self: E, event: str, listener: Listener) -> E:
        """Adds listener for event; returns self so calls can be chained."""
        self._listeners.setdefault(event, []).append(listener)
        return self

    add_listener = on

    def once(self: E, event: str, listener: Listener) -> E:
        """Adds a listener that is removed before its first call."""
        def wrapper(*args: Any) -> Any:
            self.off(event, wrapper)
            return listener(*args)
        wrapper.listener = listener  # type: ignore[attr-defined]
        return self.on(event, wrapper)

    def off(self: E, event: str, listener: Listener) -> E:
        """Removes one registration of listener (added by on() or once())."""
        lst = self._listeners.get(event)
        if lst:
            for i, fn in enumerate(lst):
                if fn is listener or getattr(fn, "listener", None) is listener:
                    del lst[i]
                    break
        return self

    remove_listener = off

    def remove_all_listeners(self: E, event: Optional[str] = None) -> E:
        if event is None:
            self._listeners.clear()
        else:
            self._listeners.pop(event, None)
        return self

    def listeners(self, event: str) -> List[Listener]:
        return [getattr(fn, "listener", fn) for fn in self._listeners.get(event, ())]

    def listener_count(self, event: str) -> int:
        return len(self._listeners.get(event, ()))

    def emit(self, event: str, *args: Any) -> bool:
        """Calls every listener of event; returns True if there was one."""
        lst = self._listeners.get(event)
        if not lst:
            if event == "error":
                err = args[0] if args else RuntimeError("unhandled 'error' event")
                raise err if isinstance(err, BaseException) else RuntimeError(err)
            return False
        if len(lst) == 1:
            lst[0](*args)  # the usual case; a listener added meanwhile waits, as below
        else:
            for fn in list(lst):
                fn(*args)
        return True

    # Node's names, for code ported line by line.
    addListener = add_listener
    removeListener = remove_listener
    removeAllListeners = remove_all_listeners
    listenerCount = listener_count
