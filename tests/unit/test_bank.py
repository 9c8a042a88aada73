import pytest

from payout_core.domain.bank import account_error, bic_error, normalize_account


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
    ],
)
def test_valid_ibans_pass(iban):
    assert account_error(iban) is None


def test_spaces_and_case_are_normalized():
    assert normalize_account("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert account_error("de89 3704 0044 0532 0130 00") is None


@pytest.mark.parametrize(
    ("iban", "reason"),
    [
        ("DE89370400440532013001", "check digits"),
        ("GB82WEST12345698765431", "check digits"),
        # A valid mod-97 checksum, but 23 characters where Germany's IBANs have 22.
        ("DE543704004405320130001", "country"),
        ("QQ76123456789012", "unknown country"),
    ],
)
def test_ibans_are_checked_against_their_country(iban, reason):
    assert reason in (account_error(iban) or "")


@pytest.mark.parametrize(
    ("account", "ok"),
    [
        ("12345", False),
        ("123456", True),
        ("1" * 34, True),
        ("1" * 35, False),
        ("000111111116", True),
        ("000111111116\n", False),
        ("123456\n", False),
        ("12-34-56", False),
        ("ÄBC123", False),
    ],
)
def test_account_length_and_characters(account, ok):
    assert (account_error(account) is None) is ok


@pytest.mark.parametrize(
    ("bic", "ok"),
    [
        ("COBADEFF", True),
        ("COBADEFFXXX", True),
        ("DEUTDEFF", True),
        ("DEUTXXFF", False),  # XX is no country
        ("COBADEF", False),
        ("COBADEFFXX", False),
        ("COBADEFFXXXX", False),
        ("COBADEFF\n", False),
        ("COBADEFFXXX\n", False),
        ("cobadeff", False),
        ("1OBADEFF", False),
    ],
)
def test_bic(bic, ok):
    assert (bic_error(bic) is None) is ok
