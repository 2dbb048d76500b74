"""The admin session: a signed cookie (HMAC-SHA256 with the cookie secret from the database)."""

import base64
import hashlib
import hmac
import json
import time

from aiohttp import web

COOKIE = "vspd-session"
LIFETIME = 12 * 3600


def signing_key(cookie_secret: bytes, adminpass: str) -> bytes:
    """The cookie key, bound to the admin password: setting a new password ends every session."""
    if not cookie_secret:
        return b""
    return hmac.new(cookie_secret, b"vspd admin session\x00" + adminpass.encode(), hashlib.sha256).digest()


def _sign(secret: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, payload, hashlib.sha256).digest()).decode().rstrip("=")


def make(secret: bytes, now: float | None = None, generation: int = 0) -> str:
    payload = json.dumps({"admin": True, "exp": int((now or time.time()) + LIFETIME), "gen": generation}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(secret, payload)


def is_admin(secret: bytes, cookie: str | None, now: float | None = None, generation: int = 0) -> bool:
    """Valid signature, not expired, and issued since the last logout (its generation)."""
    if not cookie or "." not in cookie or not secret:
        return False
    body, sig = cookie.rsplit(".", 1)
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return False
    if not hmac.compare_digest(_sign(secret, payload), sig):
        return False
    return (data.get("admin") is True and isinstance(data.get("exp"), int) and data["exp"] > (now or time.time())
            and data.get("gen") == generation)


def of_request(request: web.Request, cookie_secret: bytes, adminpass: str, generation: int) -> bool:
    """The request carries a live admin session cookie."""
    return is_admin(signing_key(cookie_secret, adminpass), request.cookies.get(COOKIE), generation=generation)


def set_cookie(resp: web.StreamResponse, value: str, secure: bool) -> None:
    resp.set_cookie(COOKIE, value, max_age=LIFETIME, path="/", httponly=True, samesite="Strict", secure=secure)


def clear_cookie(resp: web.StreamResponse) -> None:
    resp.del_cookie(COOKIE, path="/")
