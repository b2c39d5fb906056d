"""Whether a host name is this machine: what the local servers bind to, and the Host headers they accept.

Both local servers (the report's and the proposer's) bind 127.0.0.1 by default and, bound there,
answer only requests whose ``Host`` names a loopback address, so that a web page cannot reach
them through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ::1)."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_header_is_loopback(header: str) -> bool:
    """Whether a request's ``Host`` header (``name``, ``name:port``, ``[::1]:port``) names a loopback address."""
    return is_loopback(urlsplit(f"//{header}").hostname or "")
