"""The HTTP edge: every use-case error has its problem, and If-Match reads as versions."""

from __future__ import annotations

import uuid

import pytest

from payout_api.handlers.preconditions import accepted_versions, etag
from payout_api.problems import PROBLEMS, from_use_case_error
from payout_api.service import errors
from payout_api.service.errors import (
    IdempotencyKeyInUse,
    InvalidPayout,
    PayoutNotFound,
    UseCaseError,
    VersionMismatch,
)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_use_case_error_has_its_problem():
    assert _subclasses(UseCaseError) == set(PROBLEMS)
    assert {c for c in vars(errors).values() if isinstance(c, type)} - {UseCaseError} <= set(
        PROBLEMS
    )


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (PayoutNotFound(uuid.UUID(int=1)), 404, "not-found"),
        (VersionMismatch(3), 412, "precondition-failed"),
        (IdempotencyKeyInUse(), 409, "idempotency-key-in-use"),
        (InvalidPayout({"amount": ["too many decimals"]}), 422, "validation-error"),
    ],
)
def test_a_use_case_error_becomes_its_problem(error: UseCaseError, status: int, slug: str):
    problem = from_use_case_error(error)
    assert (problem.status, problem.slug) == (status, slug)


def test_the_problems_say_it_in_http_terms():
    assert from_use_case_error(VersionMismatch(3)).detail == (
        'If-Match does not match the current version "3".'
    )
    assert from_use_case_error(IdempotencyKeyInUse()).headers == {"Retry-After": "1"}
    assert from_use_case_error(InvalidPayout({"amount": ["x"]})).errors == {"amount": ["x"]}


@pytest.mark.parametrize(
    ("if_match", "versions"),
    [
        (None, None),
        ("*", None),
        ('"2", *', None),
        ('"2"', {2}),
        ('W/"2", "5"', {2, 5}),
        ('"02"', set()),
        ('"abc"', set()),
        ("2", set()),
    ],
)
def test_if_match_reads_as_the_versions_it_accepts(if_match, versions):
    accepted = accepted_versions(if_match)
    assert accepted == (None if versions is None else frozenset(versions))


def test_an_etag_is_read_back_as_its_version():
    assert accepted_versions(etag(7)) == frozenset({7})
