"""What an API handler is given of a request, whichever server read it.

web/http/fastlane.py reads the API's requests off the connection itself, aiohttp
through its Request; both hand the handlers (web/api_*.py) this: the body,
the client's signature header and where the request came from. The body is
parsed as JSON once, however many checks bind it.
"""

from typing import Any

from web.api import binding
from web.api.wire import APIError, ErrorCode

MAX_BODY = 1 << 20
TOO_LARGE = "request body larger than 1 MiB"


class APIRequest:
    __slots__ = ("_body", "signature", "peer", "forwarded_for", "real_ip", "_document")

    def __init__(self, body: bytes | None, signature: str = "", peer: str | None = None,
                 forwarded_for: str = "", real_ip: str = ""):
        self._body = body  # None: larger than MAX_BODY, refused where the handler first reads it
        self.signature = signature
        self.peer = peer
        self.forwarded_for = forwarded_for
        self.real_ip = real_ip
        self._document: dict | APIError | None = None

    def read(self) -> bytes:
        """The body; code 0 if it was too large (each handler reads it where vspd's middleware chain does)."""
        if self._body is None:
            raise APIError(ErrorCode.BAD_REQUEST, TOO_LARGE)
        return self._body

    def document(self) -> dict[str, Any]:
        """The body as a JSON object, parsed at the first call; the same code-0 error at every call if it is not."""
        if self._document is None:
            try:
                self._document = binding.parse_object(self.read())
            except APIError as e:
                self._document = e
        if isinstance(self._document, APIError):
            raise self._document
        return self._document

    def bind(self, fields: tuple[binding.Field, ...]) -> dict:
        return binding.bind_fields(self.document(), fields)
