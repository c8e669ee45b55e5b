"""Standard Webhooks signatures: the published test vector, verification, secret forms."""

from __future__ import annotations

import time

import pytest

from monitor.webhooks.signing import secret_bytes, sign, signature, verify

# The example of the Standard Webhooks / Svix reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    assert signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_signed_headers_verify_and_a_changed_body_does_not() -> None:
    headers = sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    assert headers["webhook-id"] == VECTOR_ID
    assert verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TS + 10)
    assert not verify(VECTOR_SECRET, headers, VECTOR_BODY + b" ", now=VECTOR_TS + 10)
    assert not verify("whsec_" + "A" * 32, headers, VECTOR_BODY, now=VECTOR_TS + 10)


def test_verification_refuses_a_stale_timestamp() -> None:
    headers = sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    assert not verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TS + 3600)


@pytest.mark.parametrize(
    "secret",
    [
        VECTOR_SECRET,
        "whsec_aHVudGVyMg==",
        "whsec_aHVudGVyMg",
        "aHVudGVyMg==",
        "hunter2",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_every_accepted_secret_verifies_with_the_official_standard_webhooks_library(secret: str) -> None:
    from standardwebhooks import Webhook

    now = int(time.time())
    headers = sign(secret, "msg_1", now, b'{"a":1}')
    assert Webhook(secret).verify(b'{"a":1}', headers) == {"a": 1}


def test_plain_secrets_are_base64_like_whsec_ones() -> None:
    assert secret_bytes("whsec_aHVudGVyMg==") == b"hunter2" == secret_bytes("aHVudGVyMg")


@pytest.mark.parametrize("secret", ["whsec_not base64!", "my-secret!", "whsec_", "abcde"])
def test_secrets_that_are_not_base64_are_refused_with_how_to_make_one(secret: str) -> None:
    with pytest.raises(ValueError, match="openssl rand -base64 32"):
        secret_bytes(secret)


def test_unsigned_receivers_still_get_id_and_timestamp() -> None:
    assert sign(None, "evt_1", 5, b"{}") == {"webhook-id": "evt_1", "webhook-timestamp": "5"}
