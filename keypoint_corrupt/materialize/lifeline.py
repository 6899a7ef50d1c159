"""Make pool workers die with the process that started them.

A worker blocked on its task queue outlives a coordinator killed with ``kill -9``: it is
reparented (to pid 1 or a subreaper) and waits forever, holding its memory. Each worker
therefore calls :func:`die_with_parent` once, from the pool initializer:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill the worker when its
  parent dies. The parent may already have died between the ``fork`` and the ``prctl``
  call, so the parent pid is checked right after it;
* elsewhere (macOS, or a kernel that refuses the call), a daemon thread polls the parent
  pid twice a second and exits the worker once it changes.

A worker killed this way leaves at most a hidden temporary file, which the next run
removes; every file it finished is already journaled.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading

__all__ = ["die_with_parent", "parent_alive"]

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
_PR_SET_PDEATHSIG = 1
#: Seconds between two checks of the parent pid by the fallback thread.
_POLL_SECONDS = 0.5


def parent_alive(expected: int) -> bool:
    """Whether this process's parent is still ``expected`` (it was reparented if not)."""
    return os.getppid() == expected


def _set_pdeathsig(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; whether that worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - no libc / no prctl
        return False


def _watch(expected: int) -> None:  # pragma: no cover - runs where prctl is unavailable
    """Fallback: poll the parent pid; leave at once (no cleanup) when it changes."""
    event = threading.Event()
    while not event.wait(_POLL_SECONDS):
        if not parent_alive(expected):
            os._exit(1)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # pragma: no cover - EPERM: it exists
        return True
    return True


def die_with_parent(expected: int | None = None, coordinator: int | None = None) -> str:
    """Arrange for this process to end when its parent does; return how (``prctl`` or ``thread``).

    Parameters
    ----------
    expected : int, optional
        The parent pid the caller knows (the coordinator's, for forked workers). Default:
        the parent at the time of the call (a ``forkserver``, which itself exits when the
        coordinator does). If the parent is no longer ``expected`` (it died before this
        call), the process exits at once.
    coordinator : int, optional
        The process that runs the pool; if it no longer exists, the process exits at once.
    """
    parent = os.getppid() if expected is None else expected
    how = "prctl" if _set_pdeathsig(signal.SIGKILL) else "thread"
    if not parent_alive(parent) or (coordinator is not None and not _exists(coordinator)):
        os._exit(1)  # the parent died before prctl could take effect
    if how == "thread":  # pragma: no cover - not Linux
        with contextlib.suppress(RuntimeError):
            watchdog = threading.Thread(target=_watch, args=(parent,), name="kc-lifeline", daemon=True)
            watchdog.start()
    return how
