"""The hook's token command output, read as the Go original's shared hook reads it."""

from __future__ import annotations

import pytest

from atryum.gateway.hook_token import DEFAULT_LIFETIME, TokenError, parse_token

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("tok-raw\n", ("tok-raw", NOW + DEFAULT_LIFETIME)),
        ('{"access_token": "a", "expires_in": 30}', ("a", NOW + 30)),
        ('{"accessToken": "b", "expires_in": "60"}', ("b", NOW + 60)),
        ('{"token": "c", "expires_at": 1800000100}', ("c", 1_800_000_100.0)),
        ('{"token": "d", "expiresAt": 1800000200000}', ("d", 1_800_000_200.0)),  # milliseconds
        ('{"token": "e", "expires_in": "soon"}', ("e", NOW + DEFAULT_LIFETIME)),
        ('{"token": "f", "expires_in": -5}', ("f", NOW + DEFAULT_LIFETIME)),
    ],
)
def test_token_and_expiry_are_read(output: str, expected: tuple[str, float]) -> None:
    assert parse_token(output, NOW) == expected


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("", "no token"),
        ("two words", "whitespace"),
        ('{"expires_in": 30}', "no access_token"),
        ('{"access_token": "a b"}', "whitespace"),
        ('{"access_token": ', "does not parse"),
    ],
)
def test_what_is_not_a_token_is_refused_without_echoing_it(output: str, problem: str) -> None:
    with pytest.raises(TokenError) as err:
        parse_token(output, NOW)
    assert problem in str(err.value) and "a b" not in str(err.value)
