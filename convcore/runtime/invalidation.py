"""One signal for "a setting that memoized plans depend on changed".

The thread count lives in ``runtime``, the registry and the calibration below the
dispatcher, yet each change must empty the dispatcher's plan tables. Rather than import the
dispatcher upwards (an import cycle), they call :func:`settings_changed` and the dispatcher
subscribes when it is imported: before that, no plan exists to forget.
"""

import threading

_lock = threading.Lock()
_listeners = []


def on_settings_changed(listener):
    """Call ``listener()`` (no arguments) after every :func:`settings_changed`."""
    with _lock:
        _listeners.append(listener)


def settings_changed():
    """Tell every subscriber that memoized plans may no longer be right."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener()
