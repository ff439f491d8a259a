"""Which address a staff request comes from, believing a proxy only when it is trusted.

Behind a reverse proxy (the scaled profile's nginx) every request's peer is the proxy,
so throttling logins by the peer would let one person's wrong tries slow down every
member of staff. The proxy's `X-Forwarded-For` names the real client, but any client can
send that header too. So it is read only when the peer is one of TRUSTED_PROXIES
(clinic.settings.trusted_proxies), and then from the right: the address the nearest
untrusted hop was seen from, which the client cannot choose.
"""

from __future__ import annotations

import ipaddress

from sanic.request import Request

from clinic import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(text: str, proxies: list[Network]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in proxies)


def forwarded_client(peer: str, forwarded_for: str, proxies: list[Network]) -> str:
    """The client's address from the peer and its X-Forwarded-For header.

    Walks the header from the right past trusted proxies; the first hop that is not one
    of them is the client. A peer that is not a trusted proxy is the client itself.
    """
    if not _trusted(peer, proxies):
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not hop:
            continue
        if _address(hop) is None:  # garbage: stop believing the header here
            break
        if not _trusted(hop, proxies):
            return hop
    return peer


def client_address(request: Request) -> str:
    """The address a request comes from, as far as the trusted proxies tell."""
    return forwarded_client(
        request.ip or "",
        request.headers.get("x-forwarded-for", ""),
        settings.trusted_proxies(),
    )
