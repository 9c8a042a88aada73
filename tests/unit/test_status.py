import itertools

import pytest

from payout_core.domain.status import (
    ALLOWED_TRANSITIONS,
    IllegalTransition,
    PayoutStatus,
    can_transition,
    check_client_transition,
)

S = PayoutStatus
ALLOWED = {
    (S.PENDING, S.PROCESSING),
    (S.PENDING, S.CANCELLED),
    (S.PROCESSING, S.PROCESSED),
    (S.PROCESSING, S.FAILED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_pair_of_statuses(current, target):
    assert can_transition(current, target) is ((current, target) in ALLOWED)


def test_the_table_is_exactly_the_allowed_set():
    assert set(ALLOWED_TRANSITIONS) == ALLOWED


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_clients_may_only_cancel_a_pending_payout(current, target):
    if (current, target) == (S.PENDING, S.CANCELLED):
        check_client_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_client_transition(current, target)
