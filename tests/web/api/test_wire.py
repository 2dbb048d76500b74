"""The wire helpers: constant error answers signed once are the answers signed each time."""

import base64
import os

from web.api.wire import (DEFAULT_MESSAGES, SIGNATURE_HEADER, APIAnswer, APIError, ErrorCode, Signer, error_answer,
    go_json, response_of)


def test_default_errors_signed_once_equal_signed_each_time():
    signer = Signer(os.urandom(32))
    for code, message in DEFAULT_MESSAGES.items():
        body = go_json({"code": int(code), "message": message})
        assert signer.default_error(code) == (body, signer.sign(body))
        assert signer.default_error(code) is signer.default_error(code)  # built once
        answer = error_answer(signer, APIError(code))
        assert answer.body == body and answer.signature == signer.sign(body)
        resp = response_of(answer)
        assert resp.body == body and resp.headers[SIGNATURE_HEADER] == signer.sign(body)
        assert resp.content_type == "application/json" and resp.charset == "utf-8"


def test_custom_error_messages_are_signed_as_they_come():
    signer = Signer(os.urandom(32))
    answer = error_answer(signer, APIError(ErrorCode.BAD_REQUEST, "invalid ticket hash"))
    assert answer == APIAnswer(400, b'{"code":0,"message":"invalid ticket hash"}', signer.sign(answer.body))


def test_remembered_signatures_are_the_signatures_and_bounded():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from web.api import wire
    signer = wire.Signer(bytes(range(32)))
    fresh = wire.Signer(bytes(range(32)))
    pub = Ed25519PublicKey.from_public_bytes(signer.pubkey)
    for i in range(wire.RECENT_SIGNATURES + 10):
        body = b'{"timestamp":%d}' % i
        first, again = signer.sign(body), signer.sign(body)
        assert first == again == fresh._recent.get(body, fresh.sign(body))
        pub.verify(base64.b64decode(first), body)
        assert len(signer._recent) <= wire.RECENT_SIGNATURES
    big = b"x" * (wire.RECENT_BODY + 1)
    assert signer.sign(big) == fresh.sign(big) and big not in signer._recent
