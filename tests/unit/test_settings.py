import subprocess
import sys

import pytest

from payout_core.settings import ConfigError, Settings


def test_defaults():
    s = Settings.from_env({})
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/payouts"
    assert s.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert (s.bind_host, s.api_port, s.processor_http_port) == ("0.0.0.0", 8000, 8001)
    assert s.provider_delay_ms == 200 and s.provider_failure_rate == 0
    assert s.processor_max_attempts == 5
    assert (s.rate_limit_per_s, s.rate_limit_burst) == (100.0, 200)


def test_a_rate_limit_of_zero_is_read_as_zero_not_as_unset():
    assert Settings.from_env({"RATE_LIMIT_PER_S": "0"}).rate_limit_per_s == 0.0


def test_the_provider_defaults_and_its_database_beside_the_payouts():
    s = Settings.from_env({"DATABASE_URL": "postgresql://u:p@db:5433/payouts?sslmode=require"})
    assert s.provider_url == "http://127.0.0.1:8002" and s.provider_timeout_s == 10
    assert (s.provider_sim_host, s.provider_sim_port) == ("127.0.0.1", 8002)
    assert s.provider_sim_database_url == (
        "postgresql://u:p@db:5433/payout_provider_sim?sslmode=require"
    )
    assert s.provider_sim_test_controls is False
    explicit = Settings.from_env({"PROVIDER_SIM_DATABASE_URL": "postgresql://x@h/sim"})
    assert explicit.provider_sim_database_url == "postgresql://x@h/sim"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_PORT", "http"),
        ("API_PORT", "70000"),
        ("PROVIDER_DELAY_MS", "-1"),
        ("PROVIDER_FAILURE_RATE", "1.5"),
        ("PROVIDER_FAILURE_RATE", "often"),
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://x/y"),
        ("AMQP_URL", "not a url"),
        ("PROCESSOR_CONCURRENCY", "0"),
        ("RATE_LIMIT_PER_S", "-1"),
        ("RATE_LIMIT_PER_S", "fast"),
        ("RATE_LIMIT_BURST", "0"),
        ("API_BOOTSTRAP_KEY", "short"),
        ("PROVIDER_URL", "ftp://provider"),
        ("PROVIDER_TIMEOUT_S", "0"),
        ("PROVIDER_SIM_TEST_CONTROLS", "maybe"),
        ("RECONCILE_MAX_REENQUEUES", "-1"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://collector:4317"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "10%"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_a_bad_value_stops_the_service_with_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "payout_api"],
        env={"API_PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "API_PORT" in lines[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://api.example.com", "https://api.example.com"),
        ("http://h:8080/p/", "http://h:8080/p"),
    ],
)
def test_public_base_url(raw, expected):
    assert Settings.from_env({"PUBLIC_BASE_URL": raw}).public_base_url == expected


@pytest.mark.parametrize("raw", ["ftp://h", "https://h/?q=1", "https://u:p@h", "https://h/#f", "h"])
def test_public_base_url_must_be_a_plain_base(raw):
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        Settings.from_env({"PUBLIC_BASE_URL": raw})


def test_tracing_variables_unset_and_set():
    assert Settings.from_env({}).otel_exporter_otlp_endpoint is None
    s = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }
    )
    assert s.otel_exporter_otlp_endpoint == "http://collector:4318"
    assert (s.otel_traces_sampler, s.otel_traces_sampler_arg) == ("parentbased_traceidratio", 0.1)
