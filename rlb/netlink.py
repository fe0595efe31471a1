"""The kernel's netlink from the daemon: pyroute2 on a thread of its own.

pyroute2's synchronous API runs an event loop of its own, which cannot run on a thread
whose loop is running (the daemon's), so each piece of netlink work gets a thread; that
thread is in the caller's network namespace (a new thread inherits it). Used by the
health probes' kernel paths (rlb.health.path) and the VIP announcements
(rlb.routing.announce).
"""
from __future__ import annotations

import threading
from collections.abc import Callable

NETLINK_TIMEOUT = 10.0        # seconds one piece of netlink work may take


def in_thread(work: Callable, name: str = "rlb-netlink") -> list[str]:
    """Run work(IPRoute) on a thread of its own; the problems it returns, and any error
    (a netlink socket that cannot open, a bad reply), as words, never a traceback."""
    out: list[str] = []

    def run():
        from pyroute2 import IPRoute
        try:
            with IPRoute() as ipr:
                out.extend(work(ipr))
        except Exception as err:
            out.append(f"netlink: {err}")
    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    t.join(NETLINK_TIMEOUT)
    if t.is_alive():
        out.append(f"netlink did not answer in {NETLINK_TIMEOUT:.0f} s")
    return out
