"""schemathesis against the running API from its own OpenAPI document: every operation, with the
bearer key and CI-sized example counts, under a new seed each run (printed in the session
header; FUZZ_SEED=<seed> replays a run). No response may be a 5xx, and every one must conform
to the document (status code, content type, headers, body schema)."""

from __future__ import annotations

import json
import urllib.request

import hypothesis
import pytest
import schemathesis

from payout_api.openapi.document import build_document
from tests.contract.conftest import LiveApi
from tests.support.fuzz_seed import FUZZ_SEED

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 40
WORKFLOWS = 15
STEPS_PER_WORKFLOW = 6
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


# Built by the code the API serves it with (nothing connects); the first test checks that the
# running API serves exactly this document.
DOCUMENT = build_document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": FUZZ_SEED,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                # The key is sent as a header: no made-up Authorization values.
                "with-security-parameters": False,
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    ),
)


def test_the_fuzzed_document_is_the_one_the_api_serves(live_api: LiveApi):
    with urllib.request.urlopen(live_api.url + "/api/schema/", timeout=10) as response:
        assert json.load(response) == DOCUMENT


@schema.parametrize()
def test_every_operation_conforms_to_the_document(case, live_api: LiveApi):
    response = case.call_and_validate(base_url=live_api.url, headers=live_api.auth)
    # Every request carries a valid key: a 401 would mean the fuzzing never got past auth.
    assert response.status_code != 401, response.text


def test_workflows_along_the_documented_links_conform(live_api: LiveApi):
    """Create a payout, then get, change, cancel, delete it and read its history (the links of
    the document), so that the operations on one payout run on payouts that exist."""

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"base_url": live_api.url, "headers": live_api.auth}

        def validate_response(self, response, case, **kwargs):
            super().validate_response(response, case, **kwargs)
            assert response.status_code != 401, response.text

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=WORKFLOWS,
            stateful_step_count=STEPS_PER_WORKFLOW,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
