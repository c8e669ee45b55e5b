"""Standard Webhooks signatures: the published test vector, verification, secret forms."""

from __future__ import annotations

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


def test_plain_text_secrets_are_used_as_utf8_and_whsec_ones_are_base64_decoded() -> None:
    assert secret_bytes("hunter2") == b"hunter2"
    assert secret_bytes("whsec_aHVudGVyMg==") == b"hunter2"
    assert signature("hunter2", "e", 1, b"x") == signature("whsec_aHVudGVyMg==", "e", 1, b"x")


def test_malformed_whsec_secret_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(ValueError, match="must be followed by base64"):
        secret_bytes("whsec_not base64!")


def test_unsigned_receivers_still_get_id_and_timestamp() -> None:
    assert sign(None, "evt_1", 5, b"{}") == {"webhook-id": "evt_1", "webhook-timestamp": "5"}
