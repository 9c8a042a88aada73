"""Where a webhook may be sent: https, and only to public addresses (not loopback, private,
link-local, metadata or other reserved ranges). Checked when an endpoint is saved and again at
delivery on the addresses the connection will use (GuardedResolver), so a name that later
resolves to the cluster's inside is refused. WEBHOOK_ALLOW_PRIVATE_URLS lifts both rules."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

MAX_URL_LENGTH = 2048


class UnsafeUrl(ValueError):
    """A URL webhooks may not be sent to; the message says why."""


def forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for loopback, RFC 1918, link-local (169.254.169.254, the metadata
    # address), shared (100.64/10), unique-local (fd00:ec2::254) and reserved ranges.
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """The syntax rules; raises UnsafeUrl."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UnsafeUrl("is not a valid URL") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeUrl("must be an https:// URL")
    if not parts.hostname:
        raise UnsafeUrl("must name a host")
    if parts.username or parts.password:
        raise UnsafeUrl("must not hold credentials")
    if parts.fragment:
        raise UnsafeUrl("must not hold a #fragment")
    return url


async def check_destination(url: str, *, allow_private: bool) -> None:
    """The syntax rules, then every address the host resolves to; raises UnsafeUrl."""
    check_url(url, allow_private=allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        raise UnsafeUrl(f"host {parts.hostname!r} does not resolve") from None
    _refuse_forbidden(str(parts.hostname), [str(info[4][0]) for info in infos])


def _refuse_forbidden(host: str, addresses: list[str]) -> None:
    bad = [a for a in addresses if forbidden_address(a)]
    if bad:
        raise UnsafeUrl(f"host {host!r} resolves to a non-public address ({bad[0]})")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to a non-public address: the check and
    the connection use the same answer (no window for DNS rebinding)."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        _refuse_forbidden(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self._resolver.close()

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - aiohttp internals
        return getattr(self._resolver, name)
