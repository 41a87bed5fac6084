"""Which ``Host`` headers the worker's HTTP views answer. Pure.

A page in the user's browser can point a host name of its own at 127.0.0.1 (DNS rebinding) and
read loopback views as same-origin; its requests still carry that name in ``Host``. So a view
answers only the names the worker is reached by: its bind address, ``localhost`` and the
loopback addresses when bound to loopback, and ``INGESTOR_WEB_ALLOWED_HOSTS`` (``*``: any).
"""

from __future__ import annotations

__all__ = ["HostCheck"]

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class HostCheck:
    def __init__(self, bind: str, allowed: str = "") -> None:
        extra = {h.strip().lower() for h in allowed.split(",") if h.strip()}
        self.any = "*" in extra
        names = {bind.lower().strip("[]")} | extra
        if bind in _LOOPBACK or bind.startswith("127."):
            names |= _LOOPBACK
        self.names = frozenset(names)

    def allows(self, header: str | None) -> bool:
        """``header`` (``name`` or ``name:port``, IPv6 in brackets) names this worker."""
        if self.any:
            return True
        if not header:
            return False
        host = header.strip().lower()
        if host.startswith("["):
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        return host.rstrip(".") in self.names
