"""Long work that a signal may stop (a cluster's pre-emption: SIGTERM, or SIGUSR1 before a time limit): the
signal becomes an exception where the work is, so that what it leaves half-made is removed on the way out and the
command can exit 75 ("pre-empted, run again"), instead of dying with status 143 and a temporary folder of
hundreds of megabytes that nothing removes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: the signals a cluster or a user sends to stop a job (SIGINT is Python's own KeyboardInterrupt)
STOP_SIGNALS = ("SIGTERM", "SIGUSR1")


class StopSignalError(Exception):
    """A stop signal arrived during work that :func:`interruptible` guarded."""

    def __init__(self, signal_name: str, what: str) -> None:
        super().__init__(f"{signal_name} received during {what}; what it had made so far was removed")
        self.signal_name, self.what = signal_name, what


@contextlib.contextmanager
def interruptible(what: str) -> Iterator[None]:
    """Within the block, a stop signal raises :class:`StopSignalError` (the block's own cleanup runs on the way out);
    the handlers that were there before are put back after. Outside the main thread (where Python cannot handle
    signals) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise StopSignalError(signal.Signals(signum).name, what)

    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
