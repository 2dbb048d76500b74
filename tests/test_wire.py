"""The wire helpers: constant error answers signed once are the answers signed each time."""

import os

from web.wire import DEFAULT_MESSAGES, SIGNATURE_HEADER, APIError, ErrorCode, Signer, error_response, go_json


def test_default_errors_signed_once_equal_signed_each_time():
    signer = Signer(os.urandom(32))
    for code, message in DEFAULT_MESSAGES.items():
        body = go_json({"code": int(code), "message": message})
        assert signer.default_error(code) == (body, signer.sign(body))
        assert signer.default_error(code) is signer.default_error(code)  # built once
        resp = error_response(signer, APIError(code))
        assert resp.body == body and resp.headers[SIGNATURE_HEADER] == signer.sign(body)
        assert resp.content_type == "application/json" and resp.charset == "utf-8"


def test_custom_error_messages_are_signed_as_they_come():
    signer = Signer(os.urandom(32))
    resp = error_response(signer, APIError(ErrorCode.BAD_REQUEST, "invalid ticket hash"))
    assert resp.status == 400 and resp.body == b'{"code":0,"message":"invalid ticket hash"}'
    assert resp.headers[SIGNATURE_HEADER] == signer.sign(resp.body)
