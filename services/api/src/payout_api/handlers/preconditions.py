"""A payout's version as an HTTP entity tag, and If-Match read as the versions it accepts."""

from __future__ import annotations

import re

_VERSION_TAG = re.compile(r'"(0|[1-9][0-9]*)"')  # fullmatch: etag() of a version, nothing else


def etag(version: int) -> str:
    return f'"{version}"'


def accepted_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions If-Match accepts; None for any (no header, or `*`). A weak tag counts as
    its strong one; a tag that is no version of ours accepts none."""
    if if_match is None:
        return None
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" in tags:
        return None
    return frozenset(int(m[1]) for t in tags if (m := _VERSION_TAG.fullmatch(t)))
