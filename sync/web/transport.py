"""Whether a console may serve plain HTTP where it is asked to bind (both tiers' consoles).

Passwords, session cookies and customers' personal data cross a console's connection: plain
HTTP is for the loopback address, or for another address only when the operator says a TLS
proxy fronts it (``http_allow_plain``); otherwise the console needs a certificate. Checked
before anything starts, without the web stack (a node refused here has imported nothing).
"""

from __future__ import annotations

import ipaddress

from sync.config import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_transport(host: str, *, tls: bool, allow_plain: bool, what: str) -> None:
    """``ConfigError`` saying why ``what`` may not serve on ``host`` as configured."""
    if tls or allow_plain or is_loopback(host):
        return
    raise ConfigError(
        f"http_host {host}: {what} would serve plain HTTP beyond this machine; give "
        "http_tls_cert and http_tls_key, bind 127.0.0.1, or set http_allow_plain when a TLS "
        "proxy fronts it"
    )
