import pytest

from payout_core.domain.bank import account_error, iban_checksum_ok, is_bic, normalize_account


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
    ],
)
def test_valid_ibans_pass_mod97(iban):
    assert iban_checksum_ok(iban)
    assert account_error(iban) is None


def test_spaces_and_case_are_normalized():
    assert normalize_account("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert account_error("de89 3704 0044 0532 0130 00") is None


@pytest.mark.parametrize("iban", ["DE89370400440532013001", "GB82WEST12345698765431"])
def test_iban_with_bad_check_digits(iban):
    assert "IBAN" in (account_error(iban) or "")


@pytest.mark.parametrize(
    ("account", "ok"),
    [
        ("12345", False),
        ("123456", True),
        ("1" * 34, True),
        ("1" * 35, False),
        ("000111111116", True),
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
        ("COBADEF", False),
        ("COBADEFFXX", False),
        ("COBADEFFXXXX", False),
        ("cobadeff", False),
        ("1OBADEFF", False),
    ],
)
def test_bic_shape(bic, ok):
    assert is_bic(bic) is ok
