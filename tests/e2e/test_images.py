"""The real container images, run as the Helm chart runs them.

scripts/images-local.sh builds both images with the project's Dockerfile (offline, podman);
the chart is rendered with helm and each container is started with podman exactly as its pod
spec says (tests/support/chart_pods.py): the migration hook Job, then the api and processor
Deployments, on the machine's PostgreSQL and RabbitMQ (a database and vhost of their own; the
migration creates the database) and the host network, with the ports set through the chart's
values; the simulated provider's container (the processor image) keeps its books in a database
of the test's own.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from tests.support import infra as infra_mod
from tests.support.chart_pods import ChartContainer, HelmMissing, chart_containers, render_chart
from tests.support.infra import Infra
from tests.support.podman import Container, ImageBuild, PodmanUnavailable, build_images
from tests.support.polling import eventually
from tests.support.processes import free_port
from tests.support.tools import tool_missing

# A cold build (base image, wheelhouse, both images) takes minutes; see docs/images-offline.md.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

IMAGE_TAG = "local"
BOOTSTRAP_KEY = "sk_images_bootstrap_key_0123456789"
AUTH = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


@pytest.fixture(scope="module")
def images() -> ImageBuild:
    try:
        return build_images(IMAGE_TAG)
    except PodmanUnavailable as exc:
        tool_missing(f"podman cannot build or run containers here: {exc}")


# The chart requires one (Fernet: url-safe base64 of 32 bytes).
WEBHOOK_SECRET_KEY = "Vh0Q1y6f2zjvH1k2b3u4n5m6p7q8r9s0t1u2v3w4x5Y="


@pytest.fixture(scope="module")
def infra() -> Iterator[Infra]:
    """A vhost, and the name of a database that does not exist yet: the migration makes it."""
    database = infra_mod.unique_name("payouts_images")
    vhost = infra_mod.unique_name("payouts_images")
    amqp_url = infra_mod.create_vhost(vhost)
    infra = Infra(database, vhost, f"{infra_mod.PG_BASE}/{database}", amqp_url)
    yield infra
    infra_mod.remove_infra(infra)


def chart_for(infra: Infra, **values: str | int) -> dict[str, ChartContainer]:
    """The chart's containers for this infra, with free host ports (host network; the
    processor reaches its simulated provider on 127.0.0.1, not through a Service) and any
    other chart values."""
    provider_port = free_port()
    try:
        manifests = render_chart(
            {
                "image.tag": IMAGE_TAG,
                "secrets.databaseUrl": infra.database_url,
                "secrets.amqpUrl": infra.amqp_url,
                "secrets.apiBootstrapKey": BOOTSTRAP_KEY,
                "secrets.providerSimDatabaseUrl": infra.provider_database_url,
                "secrets.webhookSecretKey": WEBHOOK_SECRET_KEY,
                "api.port": free_port(),
                "processor.port": free_port(),
                "providerSim.port": provider_port,
                "config.providerUrl": f"http://127.0.0.1:{provider_port}",
                **values,
            }
        )
    except HelmMissing as exc:
        tool_missing(f"helm is needed to read the chart: {exc}")
    return chart_containers(manifests)


@dataclass
class Deployment:
    chart: dict[str, ChartContainer]
    migration_exit_code: int
    migration_logs: str
    api: Container
    processor: Container
    startup_seconds: dict[str, float]


class Containers:
    """Starts containers with unique names; removes every one of them at the end."""

    def __init__(self) -> None:
        self.started: list[Container] = []
        self.run_id = secrets.token_hex(3)

    def start(self, spec: ChartContainer, role: str) -> Container:
        variable = {"api": "API_PORT", "provider-sim": "PROVIDER_SIM_PORT"}.get(
            spec.name, "PROCESSOR_HTTP_PORT"
        )
        port = int(spec.env[variable])
        container = Container.start(spec, f"payout-e2e-{role}-{self.run_id}", port)
        self.started.append(container)
        return container

    def remove_all(self) -> None:
        for container in self.started:
            container.remove()


@pytest.fixture(scope="module")
def containers() -> Iterator[Containers]:
    started = Containers()
    yield started
    started.remove_all()


@pytest.fixture(scope="module")
def deployment(images: ImageBuild, infra: Infra, containers: Containers) -> Deployment:
    """What `helm install` does: the migration hook Job to completion, then api + processor,
    each after its check-config init container exited 0."""
    chart = chart_for(infra)
    migration = Container.start(chart["migrate"], f"payout-e2e-migrate-{containers.run_id}")
    containers.started.append(migration)
    exit_code = migration.wait_exit()
    logs = migration.logs(tail=200)
    assert exit_code == 0, logs
    provider = containers.start(chart["provider-sim"], "provider")
    for component in ("api", "processor"):  # each pod's init container, as the kubelet runs it
        check = Container.start(
            chart[f"{component}/check-config"], f"payout-e2e-{component}-check-{containers.run_id}"
        )
        containers.started.append(check)
        assert check.wait_exit() == 0, check.logs(tail=50)
    api = containers.start(chart["api"], "api")
    processor = containers.start(chart["processor"], "processor")
    startup = {
        "provider-sim": provider.wait_ready(),
        "api": api.wait_ready(),
        "processor": processor.wait_ready(),
    }
    print(f"\nimage build {images.seconds:.1f}s; start-up to /readyz 200: {startup}")
    return Deployment(chart, exit_code, logs, api, processor, startup)


async def create_payout(session: aiohttp.ClientSession, api: Container, account: str) -> str:
    body = {
        "amount": "12.50",
        "currency": "EUR",
        "recipient_details": {"account": account, "name": "Container E2E"},
    }
    async with session.post(f"{api.url}/api/payouts/", json=body, headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]


async def wait_status(
    session: aiohttp.ClientSession, api: Container, payout_id: str, timeout: float = 30
) -> dict:
    async def terminal() -> dict | None:
        async with session.get(f"{api.url}/api/payouts/{payout_id}/", headers=AUTH) as resp:
            data = await resp.json()
        return data if data["status"] in ("processed", "failed") else None

    return await eventually(terminal, timeout=timeout, what=f"payout {payout_id} terminal")


def test_migration_job_creates_and_migrates_the_database(deployment: Deployment):
    spec = deployment.chart["migrate"]
    assert spec.command == ("payout-admin", "migrate")
    assert deployment.migration_exit_code == 0
    assert "Running upgrade" in deployment.migration_logs


def test_containers_run_non_root_on_a_read_only_root_with_a_writable_tmp(
    deployment: Deployment,
):
    for container in (deployment.api, deployment.processor):
        host_config = container.inspect()["HostConfig"]
        assert host_config["ReadonlyRootfs"] is True
        assert "/tmp" in host_config["Tmpfs"]
        probe = container.exec(
            "sh", "-c", "id -u; touch /tmp/probe && echo tmp-ok; touch /app/probe || echo app-ro"
        )
        assert probe.stdout.split() == ["10001", "tmp-ok", "app-ro"], probe
        assert "Read-only file system" in probe.stderr


async def test_payouts_created_through_the_api_container_are_processed(deployment: Deployment):
    async with aiohttp.ClientSession() as session:
        processed = await create_payout(session, deployment.api, "DE89370400440532013000")
        refused = await create_payout(session, deployment.api, "000111111116")
        assert (await wait_status(session, deployment.api, processed))["status"] == "processed"
        failed = await wait_status(session, deployment.api, refused)
    assert (failed["status"], failed["failure_code"]) == ("failed", "no_account")


async def test_readyz_and_metrics_of_both_containers(deployment: Deployment):
    expected = [
        (deployment.api, "payout_http_requests_total"),
        (deployment.processor, "payout_messages_total"),
    ]
    async with aiohttp.ClientSession() as session:
        for container, metric in expected:
            async with session.get(f"{container.url}/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["checks"] == {"database": True, "broker": True}
            async with session.get(f"{container.url}/metrics") as resp:
                assert resp.status == 200
                assert f"# TYPE {metric} counter" in await resp.text()


def test_image_healthcheck_passes_in_both_containers(deployment: Deployment):
    for container in (deployment.api, deployment.processor):
        healthcheck = container.inspect()["Config"]["Healthcheck"]
        assert healthcheck["Test"][:3] == ["CMD", "python", "-c"], healthcheck
        result = container.healthcheck()
        assert result.returncode == 0, (result.stdout, result.stderr, container.logs())
        assert container.inspect()["State"]["Health"]["Status"] == "healthy"


async def inflight(session: aiohttp.ClientSession, processor: Container) -> float:
    async with session.get(f"{processor.url}/metrics") as resp:
        text = await resp.text()
    line = next(ln for ln in text.splitlines() if ln.startswith("payout_processor_inflight "))
    return float(line.split()[1])


async def test_sigterm_stops_each_container_cleanly_within_its_grace_period(
    deployment: Deployment, infra: Infra, containers: Containers
):
    """A second api + processor pair whose simulated provider takes 2 s (a chart value),
    stopped while that processor has payouts in flight: both exit 0 within the grace period,
    and every payout is still processed."""
    chart = chart_for(infra, **{"config.providerDelayMs": 2000})
    containers.start(chart["provider-sim"], "provider-slow").wait_ready()
    api = containers.start(chart["api"], "api-stopped")
    processor = containers.start(chart["processor"], "processor-stopped")
    api.wait_ready()
    processor.wait_ready()
    async with aiohttp.ClientSession() as session:
        ids = [await create_payout(session, api, f"0001234567{n:02d}") for n in range(10)]
        await eventually(lambda: inflight(session, processor), timeout=15, what="payouts in flight")
        for container in (api, processor):
            exit_code, seconds = container.stop()
            assert exit_code == 0, container.logs()
            assert seconds < container.spec.grace_seconds, (seconds, container.logs())
        for payout_id in ids:
            final = await wait_status(session, deployment.api, payout_id)
            assert final["status"] == "processed", final


def on_host_network(spec: ChartContainer, services: dict[str, Container]) -> ChartContainer:
    """The spec with each `http://<Service>:<port>` argument pointing at the container that
    Service selects (host network: 127.0.0.1 and the container's port), as cluster DNS would."""
    args = list(spec.args)
    for option, component in (("--api-url", "api"), ("--processor-url", "processor")):
        at = args.index(option) + 1
        assert args[at].startswith(f"http://payout-service-{component}:"), args
        args[at] = services[component].url
    return dataclasses.replace(spec, args=tuple(args))


def test_helm_test_pod_passes_against_the_release(deployment: Deployment, containers: Containers):
    """The chart's `helm test` Pod, run from its container spec: /readyz of both services,
    then a payout created with the bootstrap key and read back."""
    spec = deployment.chart["helm-test"]
    assert spec.command == ("payout-smoke-test",)
    assert spec.env["API_BOOTSTRAP_KEY"] == BOOTSTRAP_KEY
    services = {"api": deployment.api, "processor": deployment.processor}
    check, exit_code, output = Container.run_to_end(
        on_host_network(spec, services), f"payout-e2e-helm-test-{containers.run_id}"
    )
    containers.started.append(check)
    assert exit_code == 0, output
    for line in ("ok: api is ready", "ok: processor is ready", "created and read back"):
        assert line in output, output
