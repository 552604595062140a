"""Whether a console may serve plain HTTP where it is asked to bind (both tiers' consoles).

Passwords, session cookies and customers' personal data cross a console's connection: plain
HTTP is for the loopback address, or for another address only when the operator says a TLS
proxy fronts it (``http_allow_plain``); otherwise the console needs a certificate. Checked
before anything starts, without the web stack (a node refused here has imported nothing).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path

from sync.config import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_transport(
    host: str, *, cert: Path | None, key: Path | None, allow_plain: bool, what: str
) -> None:
    """``ConfigError`` saying why ``what`` may not serve on ``host`` as configured: plain
    HTTP beyond this machine, or a certificate and key (``http_tls_cert``, ``http_tls_key``)
    that cannot be read or do not belong together — found here, before the node opens its
    store or says where it serves, rather than when the web server starts."""
    if cert is not None and key is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        except ssl.SSLError as exc:  # a file that is no PEM, a key of another certificate
            reason = _ssl_reason(exc)
        except OSError as exc:  # missing, unreadable
            reason = exc.strerror or str(exc)
        else:
            return
        raise ConfigError(
            f"http_tls_cert {cert} / http_tls_key {key}: {what} cannot serve HTTPS with them "
            f"({reason})"
        )
    if allow_plain or is_loopback(host):
        return
    raise ConfigError(
        f"http_host {host}: {what} would serve plain HTTP beyond this machine; give "
        "http_tls_cert and http_tls_key, bind 127.0.0.1, or set http_allow_plain when a TLS "
        "proxy fronts it"
    )


def _ssl_reason(exc: ssl.SSLError) -> str:
    """What an ``ssl.SSLError`` says, in words, without OpenSSL's source file and line."""
    said = f"{exc.reason or ''} {exc}".upper()
    if "KEY_VALUES_MISMATCH" in said:
        return "the key is not the certificate's"
    if "PEM" in said or "NO_START_LINE" in said:
        return "not a PEM certificate and its key"
    return re.sub(r"\s*\(_ssl\.c:\d+\)", "", str(exc))
