"""HTTPS check (keepalived's SSL_GET): the HTTP check over TLS, SNI = the host setting,
the certificate not verified (keepalived's default)."""
from __future__ import annotations

from rlb.health.result import Result

from . import http
from .base import Checker, Probe


async def probe(probe: Probe) -> Result:
    return await http.get(probe, tls=True)


CHECKER = Checker("https", "the http check over TLS (certificate not verified)",
                  http.SETTINGS, probe, wrong_ports=((80, "plain HTTP"),))
