"""DATABASE_URL in libpq's URL form, including its multi-host form.

`postgresql://user:pw@h1:5432,h2:5433/db?target_session_attrs=read-write` lists every node of
a PostgreSQL cluster; the client tries them in order and keeps the first one that matches
target_session_attrs. asyncpg reads this form itself: here it is validated, and rewritten
where the services need another database on the same hosts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")


class InvalidDatabaseUrl(ValueError):
    """DATABASE_URL is not a libpq URL the services can use."""


@dataclass(frozen=True)
class DatabaseUrl:
    raw: str = field(repr=False)  # holds the password
    hosts: tuple[tuple[str, int], ...]
    database: str
    query: dict[str, str]

    @property
    def is_multi_host(self) -> bool:
        return len(self.hosts) > 1

    def with_database(self, database: str) -> str:
        """The same hosts, credentials and options, another database."""
        parts = urlsplit(self.raw)
        return urlunsplit(parts._replace(path="/" + database))

    def with_query(self, **options: str) -> str:
        """The URL with these query options set (replacing any given)."""
        parts = urlsplit(self.raw)
        query = {**self.query, **options}
        return urlunsplit(parts._replace(query=urlencode(query)))


def parse(raw: str) -> DatabaseUrl:
    parts = urlsplit(raw)
    if parts.scheme not in SCHEMES:
        raise InvalidDatabaseUrl(f"must start with {SCHEMES[0]}://")
    hostlist = parts.netloc.rpartition("@")[2]
    if not hostlist:
        raise InvalidDatabaseUrl("names no host")
    hosts = tuple(_host(entry) for entry in hostlist.split(","))
    query = dict(parse_qsl(parts.query))
    attrs = query.get("target_session_attrs")
    if attrs is not None and attrs not in TARGET_SESSION_ATTRS:
        raise InvalidDatabaseUrl(
            f"target_session_attrs must be one of {', '.join(TARGET_SESSION_ATTRS)}, got {attrs!r}"
        )
    return DatabaseUrl(raw, hosts, parts.path.lstrip("/"), query)


def _host(entry: str) -> tuple[str, int]:
    if entry.startswith("["):  # [ipv6]:port
        host, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = entry.partition(":")
    if not host:
        raise InvalidDatabaseUrl(f"has an empty host in {entry!r}")
    if not port_text:
        return host, 5432
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidDatabaseUrl(f"has an invalid port in {entry!r}")
    return host, int(port_text)


def connect_url(raw: str) -> str:
    """The URL the services connect with: a multi-host URL that does not say which node it
    wants gets target_session_attrs=read-write (the services write: a standby is no use)."""
    url = parse(raw)
    if url.is_multi_host and "target_session_attrs" not in url.query:
        return url.with_query(target_session_attrs="read-write")
    return raw
