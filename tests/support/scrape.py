"""Reading a service's /metrics the way Prometheus does (prometheus_client's own parser)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    """One scrape: the metric families it declares and every sample it carries."""

    families: frozenset[str]
    samples: tuple[Sample, ...]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families = list(text_string_to_metric_families(text))
        return cls(
            families=frozenset(f.name for f in families),
            samples=tuple(s for f in families for s in f.samples),
        )

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str, **labels: str) -> bool:
        return any(
            s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            for s in self.samples
        )

    def label_values(self) -> Iterator[tuple[str, str, str]]:
        """(sample name, label, value) for every label of every sample."""
        for s in self.samples:
            for label, value in s.labels.items():
                yield s.name, label, value


async def scrape(session: aiohttp.ClientSession, base_url: str) -> Scrape:
    async with session.get(f"{base_url}/metrics") as response:
        assert response.status == 200, await response.text()
        return Scrape.parse(await response.text())


async def metric_value(base_url: str, name: str, labels: dict[str, str]) -> float:
    """One value from a service's /metrics (see Scrape.value)."""
    async with aiohttp.ClientSession() as session:
        return (await scrape(session, base_url)).value(name, **labels)
