"""How `make test` spreads the suite over its pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import xdist_lane


def test_a_file_is_one_lane_and_the_service_stacks_share_one():
    assert xdist_lane("tests/unit/test_money.py::test_a[1]") == "tests/unit/test_money.py"
    assert xdist_lane("tests/unit/test_money.py::test_b") == "tests/unit/test_money.py"
    stacks = {
        xdist_lane("tests/e2e/test_pipeline.py::test_x"),
        xdist_lane("tests/e2e/test_webhooks.py::test_y"),
        xdist_lane("tests/contract/test_api_fuzz.py::test_z"),
        xdist_lane("tests/hostile/test_protocol.py::test_w"),
    }
    assert len(stacks) == 1
    assert xdist_lane("tests/hostile/test_input_classes.py::t") not in stacks
    assert xdist_lane("tests/e2e/test_images.py::test_v") not in stacks
