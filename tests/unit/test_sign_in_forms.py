"""The sign-in form's CSRF token: good only for the browser and authorization request it was
issued for, until it expires, and across a signing key rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from egress.domain.errors import Forbidden
from egress.services.sign_in_forms import FORM_TTL_S, SignInForms, new_browser_id
from egress.signing import SigningRing, new_signing_key_entry, parse_signing_keys

K1, K2 = new_signing_key_entry(), new_signing_key_entry()
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
REQUEST = [("client_id", "web"), ("redirect_uri", "https://app.test/cb"), ("state", "s1")]


def forms(now: list[datetime], keys: str = K1) -> SignInForms:
    return SignInForms(SigningRing(parse_signing_keys(keys)), lambda: now[0])


def test_a_form_token_is_bound_to_its_browser_request_and_time() -> None:
    now = [T0]
    browser = new_browser_id()
    token = forms(now).issue(browser, REQUEST)
    forms(now).check(token, browser, list(reversed(REQUEST)))  # the order does not matter
    forms(now, f"{K2},{K1}").check(token, browser, REQUEST)  # a rotated ring still knows it
    refused = [
        (None, browser, REQUEST),  # a form posted from elsewhere: no field
        (token, None, REQUEST),  # no cookie (SameSite kept it back)
        (token, new_browser_id(), REQUEST),  # another browser's cookie
        (token, browser, [*REQUEST[:2], ("state", "s2")]),  # another authorization request
        (token[:-1] + ("B" if token.endswith("A") else "A"), browser, REQUEST),  # tampered
        (forms(now, K2).issue(browser, REQUEST), browser, REQUEST),  # not this server's key
    ]
    for args in refused:
        with pytest.raises(Forbidden, match="reload the page"):
            forms(now).check(*args)
    now[0] = T0 + timedelta(seconds=FORM_TTL_S)
    with pytest.raises(Forbidden):
        forms(now).check(token, browser, REQUEST)
