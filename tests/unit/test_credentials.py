"""The request's one credential, parsed from its raw headers."""

from __future__ import annotations

import pytest

from app.api.credentials import Credential, credential_of, parse
from app.domain.errors import InvalidInput


@pytest.mark.parametrize(("headers", "expected"), [
    ([], Credential()),
    ([(b"authorization", b"Bearer abc.def")], Credential(bearer="abc.def")),
    ([(b"authorization", b"bearer   abc.def  ")], Credential(bearer="abc.def")),
    ([(b"authorization", b"Basic dXNlcjpwdw==")], Credential()),  # not a bearer token: no credential
    ([(b"authorization", b"Bearer")], Credential()),
    ([(b"x-api-key", b" kf_abc ")], Credential(api_key="kf_abc")),
    ([(b"x-api-key", b"")], Credential()),
    ([(b"host", b"x"), (b"x-forwarded-for", b"1.2.3.4"), (b"authorization", b"Bearer t")], Credential(bearer="t")),
])
def test_one_credential_is_read(headers, expected):
    assert parse(headers) == expected


@pytest.mark.parametrize("headers", [
    [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
    [(b"authorization", b"Bearer a"), (b"Authorization", b"Bearer a")],
    [(b"x-api-key", b"k1"), (b"x-api-key", b"")],
    [(b"x-api-key", b"k1"), (b"authorization", b"Bearer a")],
    [(b"authorization", b"Basic x"), (b"x-api-key", b"k1")],
])
def test_more_than_one_is_refused(headers):
    with pytest.raises(InvalidInput) as refused:
        parse(headers)
    assert refused.value.code == "duplicate_credentials"


def test_the_credential_is_parsed_once_per_request():
    scope = {"headers": [(b"authorization", b"Bearer a")]}
    first = credential_of(scope)
    scope["headers"] = [(b"authorization", b"Bearer b")]  # whatever happens to the headers later
    assert credential_of(scope) is first and first.bearer == "a"
