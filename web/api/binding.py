"""Request binding with the rules of vspd's Go binding (spec §1.1).

Unknown keys are ignored, keys match case-insensitively (an exact match
wins), the last duplicate wins, types are strict; `required` means a
non-empty string, a non-zero integer or a present, non-null object.
Every failure is a code-0 bad request naming the field.
"""

import json
from dataclasses import dataclass

from vspd.chain.votes import MAX_POLICIES
from web.api.wire import APIError, ErrorCode

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "str", "int", "map"
    required: bool = False
    max_items: int | None = None


TICKET_HASH = (Field("tickethash", "str", True),)
TICKET_BROADCAST = (Field("tickethex", "str", True), Field("tickethash", "str", True),
                    Field("parenthex", "str", True))
FEE_ADDRESS = (Field("timestamp", "int", True), Field("tickethash", "str", True),
               Field("tickethex", "str", True), Field("parenthex", "str", True))
SET_ALT_SIGN_ADDR = FEE_ADDRESS + (Field("altsignaddress", "str", True),)
_POLICIES = (Field("tspendpolicy", "map", False, MAX_POLICIES), Field("treasurypolicy", "map", False, MAX_POLICIES))
PAY_FEE = (Field("timestamp", "int", True), Field("tickethash", "str", True), Field("feetx", "str", True),
           Field("votingkey", "str", True), Field("votechoices", "map", True)) + _POLICIES
SET_VOTE_CHOICES = (Field("timestamp", "int", True), Field("tickethash", "str", True),
                    Field("votechoices", "map", True)) + _POLICIES


def _bad(message: str) -> APIError:
    return APIError(ErrorCode.BAD_REQUEST, message)


def _reject_constant(name: str):
    raise ValueError(f"invalid number {name}")


def parse_object(body: bytes) -> dict:
    if not body:
        raise _bad("EOF")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad(f"invalid JSON: {e}") from None
    if not isinstance(value, dict):
        raise _bad(f"request body must be a JSON object, not {type(value).__name__}")
    return value


def _lookup(obj: dict, name: str):
    if name in obj:
        return True, obj[name]
    found, value = False, None
    for key, v in obj.items():  # dict keeps the document order: last match wins
        if key.lower() == name:
            found, value = True, v
    return found, value


def bind(body: bytes, fields: tuple[Field, ...]) -> dict:
    return bind_fields(parse_object(body), fields)


def bind_fields(obj: dict, fields: tuple[Field, ...]) -> dict:
    """The fields of a parsed request body; `obj` itself is left as it is."""
    out: dict = {}
    for f in fields:
        present, v = _lookup(obj, f.name)
        if f.kind == "str":
            if present and v is not None and not isinstance(v, str):
                raise _bad(f'field "{f.name}": expected a string, got {_type(v)}')
            out[f.name] = v or ""
            if f.required and not out[f.name]:
                raise _bad(f'field "{f.name}" is required')
        elif f.kind == "int":
            if present and v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise _bad(f'field "{f.name}": expected an integer, got {_type(v)}')
            out[f.name] = v or 0
            if not INT64_MIN <= out[f.name] <= INT64_MAX:
                raise _bad(f'field "{f.name}": integer out of range')
            if f.required and out[f.name] == 0:
                raise _bad(f'field "{f.name}" is required')
        else:
            if present and v is not None:
                if not isinstance(v, dict):
                    raise _bad(f'field "{f.name}": expected an object, got {_type(v)}')
                for k, val in v.items():
                    if not isinstance(val, str):
                        raise _bad(f'field "{f.name}": value of "{k}" must be a string')
            elif f.required:
                raise _bad(f'field "{f.name}" is required')
            out[f.name] = dict(v) if isinstance(v, dict) else {}
            if f.max_items is not None and len(out[f.name]) > f.max_items:
                raise _bad(f'field "{f.name}": at most {f.max_items} entries')
    return out


def _type(v) -> str:
    return {str: "string", bool: "boolean", int: "number", float: "number", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)
