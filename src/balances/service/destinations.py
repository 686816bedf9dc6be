"""Where webhook deliveries may go: public addresses only, unless allowed.

A subscription names any URL, and the service then POSTs to it from inside its own
network. Without a guard, anyone holding the API key could aim deliveries at the
cloud metadata endpoint, the service's own admin ports or other hosts of a private
network. So by default a webhook host must be public: a literal address is checked
when the subscription is made, a name each time a delivery resolves it (every
address it resolves to must be public). ``BALANCES_WEBHOOKS__ALLOW_PRIVATE_URLS``
lifts the guard for receivers on a private network.

The check resolves the name just before the request, which resolves it again; a
name that changes its answer in between (DNS rebinding) can still slip through, a
known limit of a check at this level.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from balances.errors import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrivateDestinationError(Exception):
    """A delivery URL whose host is (or resolves to) a non-public address."""


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared,
    reserved or multicast (an IPv4-mapped IPv6 address is judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host spells out, or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_literal_host(url: str) -> None:
    """Refuse, when the subscription is made, a URL naming a non-public address or
    ``localhost`` outright (ValidationError)."""
    host = httpx.URL(url).host
    address = literal_address(host)
    if host.lower().rstrip(".") == "localhost" or (address is not None and not is_public(address)):
        raise ValidationError(
            f"a webhook URL must reach a public address, not {host}: deliveries to loopback "
            "and private networks are off (BALANCES_WEBHOOKS__ALLOW_PRIVATE_URLS=true allows them)"
        )


async def check_destination(url: str) -> None:
    """Resolve the URL's host; PrivateDestinationError when any address is not public."""
    parsed = httpx.URL(url)
    host = parsed.host
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as error:
            raise PrivateDestinationError(f"{host} does not resolve: {error}") from error
        # An IPv6 answer may carry its zone (fe80::1%eth0): the address is before it.
        addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]
    private = sorted({str(a) for a in addresses if not is_public(a)})
    if private:
        raise PrivateDestinationError(
            f"{host} resolves to a non-public address ({', '.join(private)}): refused "
            "(BALANCES_WEBHOOKS__ALLOW_PRIVATE_URLS=true allows it)"
        )
