"""API v3 as an OpenAPI 3.1 document, built from the wire types, served at GET /api/openapi.json.

Built in code, not kept as a JSON file, so that what can be derived is:
the error codes, their messages and HTTP statuses come from web/api/wire.py,
the paths and methods from web/api/routes.py's ROUTES, the required request
fields from web/api/binding.py. What only prose can say (formats, bounds, how
this VSP differs from the Go vspd) is written here once; the /api page is
rendered from this document (web/pages/site.py), so the two cannot drift.
The bytes are built once per process and served as they are, with an
ETag, so a client may cache them.
"""

import hashlib
import json
from functools import lru_cache
from typing import Any

from aiohttp import web

from vspd.chain.votes import MAX_POLICIES, POLICY_VALUES
from vspd.version import __version__
from web.api import binding
from web.api import routes as api
from web.api.openapi_examples import EXAMPLES, SIGNATURES
from web.api.request import MAX_BODY
from web.api.wire import CLIENT_SIGNATURE_HEADER, DEFAULT_MESSAGES, SIGNATURE_HEADER, ErrorCode, http_status

PATH = "/api/openapi.json"
INT64 = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}
COUNT = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}
HEX = r"^([0-9a-fA-F]{2})+$"
BASE58 = "[1-9A-HJ-NP-Za-km-z]"
BASE64 = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

# Differences from the Go vspd (EXCCoin/vspd, decred/vspd) a client can see; each is said where it applies.
GO_UNKNOWN_TICKET = ("Differs from the Go vspd: a ticket neither this VSP nor its exccd knows is code 6 "
                     "(HTTP 400, the client's mistake); the Go vspd answers code 1 (HTTP 500).")
GO_INTAKE = ("Differs from the Go vspd: while the VSP could not vote new tickets (too few healthy voting "
             "wallets, or its node behind the chain) this answers code 2 with a message starting "
             "\"vsp is temporarily not accepting tickets\"; no fee is taken.")
GO_BODY_LIMIT = (f"Bodies over {MAX_BODY} bytes are refused with code 0 (HTTP 400), as decred/vspd limits "
                 "them; EXCCoin/vspd reads any size.")


# Where a client goes next with the same ticket (by the example names of _operation's ok_example).
LINKS = {"FeeAddress": ("payfee", "ticketstatus"), "PayFee": ("ticketstatus", "setvotechoices")}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_statuses() -> dict[int, list[ErrorCode]]:
    by_status: dict[int, list[ErrorCode]] = {}
    for code in ErrorCode:
        by_status.setdefault(http_status(code), []).append(code)
    return by_status


def _error_schema(status: int, codes: list[ErrorCode]) -> dict:
    return {
        "type": "object", "title": f"Error{status}",
        "description": f"An error answered with HTTP {status}. `message` is the code's default message "
                       "or a more precise one (clients act on `code`, never on `message`).",
        "required": ["code", "message"], "additionalProperties": False,
        "properties": {
            "code": {"oneOf": [{"const": int(c), "title": DEFAULT_MESSAGES[c], "description": c.name}
                               for c in codes]},
            "message": {"type": "string", "minLength": 1}}}


def _schemas() -> dict:
    s: dict[str, Any] = {
        "Timestamp": {**INT64, "not": {"const": 0},
                      "description": "Unix seconds chosen by the client; required and non-zero. Compared with the "
                                     "clock nowhere; setvotechoices requires it to grow (code 17)."},
        "ServerTimestamp": {**INT64, "minimum": 0, "description": "The server's clock, unix seconds."},
        "TicketHash": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "minLength": 64, "maxLength": 64,
                       "description": "A ticket's txid: 32 bytes, byte-reversed, hex (64 characters)."},
        "TxHex": {"type": "string", "pattern": HEX, "minLength": 2, "maxLength": 2 * MAX_BODY,
                  "description": "A serialized EXCC transaction, hex."},
        "Address": {"type": "string", "pattern": f"^{BASE58}{{35,36}}$", "minLength": 35, "maxLength": 36,
                    "description": "A base58check EXCC address of this VSP's network (P2PKH: mainnet \"22…\", "
                                   "testnet \"Ts…\", simnet \"Ss…\")."},
        "WIF": {"type": "string", "pattern": f"^{BASE58}{{50,52}}$", "minLength": 50, "maxLength": 52,
                "description": "A secp256k1 private key in EXCC wallet import format (base58check of a 1-byte "
                               "network id, 32-byte key, optional key-type byte)."},
        "Request": {"type": "string", "contentEncoding": "base64", "pattern": BASE64,
                    "description": "The request body exactly as received, base64 (standard, padded). Clients "
                                   "compare it with what they sent, byte for byte."},
        "VoteChoices": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Agenda id to choice. EXCC defines no agendas today, so only {} is valid."},
        "TSpendPolicy": {"type": "object", "maxProperties": MAX_POLICIES,
                         "propertyNames": {"pattern": "^[0-9a-fA-F]{64}$"},
                         "additionalProperties": {"enum": sorted(POLICY_VALUES)},
                         "description": "Treasury spend hash (64 hex) to policy."},
        "TreasuryPolicy": {"type": "object", "maxProperties": MAX_POLICIES,
                           "propertyNames": {"pattern": "^[0-9a-fA-F]{66}$"},
                           "additionalProperties": {"enum": sorted(POLICY_VALUES)},
                           "description": "Treasury key (33-byte public key, 66 hex) to policy."},
        "PayFeePolicy": {"type": "object", "maxProperties": MAX_POLICIES, "additionalProperties": {"type": "string"},
                         "description": "As in setvotechoices, but payfee takes the fee whatever the preferences: "
                                        "a map that does not validate is logged and not stored, as in the Go vspd."},
        "StoredMap": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "The preferences as stored: setvotechoices merges each request's map into "
                                     "them, so a policy map may hold more than the 3 entries one request may set."},
    }
    for status, codes in sorted(_error_statuses().items()):
        s[f"Error{status}"] = _error_schema(status, codes)
    s["VspInfoResponse"] = _response({
        "apiversions": {"type": "array", "items": {"const": 3}, "minItems": 1, "maxItems": 1},
        "timestamp": {**_ref("ServerTimestamp"), "description": (
            "The time of the answer, unix seconds, as the Go vspd sends it: the signed body is prepared and "
            "signed again at most once a second, when asked in a later second; the numbers in it are "
            "refreshed every minute and at every block.")},
        "pubkey": {"type": "string", "contentEncoding": "base64", "pattern": BASE64, "minLength": 44,
                   "maxLength": 44, "description": "The 32-byte ed25519 key of VSP-Server-Signature, base64."},
        "feepercentage": {"type": "number", "minimum": 0, "maximum": 100,
                          "description": "The fee, in percent of the ticket price (printed as Go prints a float64)."},
        "vspclosed": {"type": "boolean"},
        "vspclosedmsg": {"type": "string", "description": "Empty unless vspclosed."},
        "network": {"enum": ["mainnet", "testnet", "simnet"]},
        "vspdversion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+", "description": "Semver (≥ 1.1.0 for "
                        "the EXCC VSP listing)."},
        "voting": COUNT, "voted": COUNT, "totalvotingwallets": COUNT, "votingwalletsonline": COUNT,
        "revoked": {**COUNT, "description": "All revoked tickets (expired + missed), the EXCCoin/vspd field."},
        "expired": {**COUNT, "description": "Also in decred/vspd; this VSP answers both shapes' fields."},
        "missed": {**COUNT, "description": "Also in decred/vspd; this VSP answers both shapes' fields."},
        "blockheight": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
        "estimatednetworkproportion": {"type": "number", "minimum": 0,
                                       "description": "voting / the network's ticket pool size (a float32)."},
    })
    s["FeeAddressRequest"] = _request(binding.FEE_ADDRESS, {
        "timestamp": _ref("Timestamp"), "tickethash": _ref("TicketHash"),
        "tickethex": {**_ref("TxHex"), "description": "The ticket; its txid must be tickethash."},
        "parenthex": {**_ref("TxHex"), "description": "The transaction the ticket spends (broadcast if the "
                                                      "node does not know it)."}})
    s["FeeAddressResponse"] = _response({
        "timestamp": _ref("ServerTimestamp"), "feeaddress": _ref("Address"),
        "feeamount": {**COUNT, "description": "The fee in atoms (1 EXCC = 1e8 atoms): an integer, not coins."},
        "expiration": {**INT64, "description": "Unix seconds after which the quote lapses (payfee: code 8); "
                                               "asking again re-quotes the same address."},
        "request": _ref("Request")})
    s["PayFeeRequest"] = _request(binding.PAY_FEE, {
        "timestamp": _ref("Timestamp"), "tickethash": _ref("TicketHash"),
        "feetx": {**_ref("TxHex"), "description": "A signed transaction paying at least feeamount to feeaddress."},
        "votingkey": {**_ref("WIF"), "description": "The private key of the ticket's voting address (output 0)."},
        "votechoices": _ref("StoredMap"), "tspendpolicy": _ref("PayFeePolicy"),
        "treasurypolicy": _ref("PayFeePolicy")})
    s["TicketStatusRequest"] = _request(binding.TICKET_HASH, {"tickethash": _ref("TicketHash")})
    s["TicketStatusResponse"] = _response({
        "timestamp": _ref("ServerTimestamp"), "ticketconfirmed": {"type": "boolean"},
        "feetxstatus": {"enum": ["none", "received", "broadcast", "confirmed", "error"]},
        "feetxhash": {"type": "string", "pattern": "^([0-9a-f]{64})?$", "description": "\"\" until a fee is paid."},
        "altsignaddress": {"anyOf": [{"const": ""}, _ref("Address")], "description": "\"\" if none."},
        "votechoices": _ref("StoredMap"), "tspendpolicy": _ref("StoredMap"), "treasurypolicy": _ref("StoredMap"),
        "request": _ref("Request")})
    s["SetVoteChoicesRequest"] = _request(binding.SET_VOTE_CHOICES, {
        "timestamp": _ref("Timestamp"), "tickethash": _ref("TicketHash"), "votechoices": _ref("VoteChoices"),
        "tspendpolicy": _ref("TSpendPolicy"), "treasurypolicy": _ref("TreasuryPolicy")})
    s["SetAltSignAddrRequest"] = _request(binding.SET_ALT_SIGN_ADDR, {
        "timestamp": _ref("Timestamp"), "tickethash": _ref("TicketHash"), "tickethex": _ref("TxHex"),
        "parenthex": _ref("TxHex"),
        "altsignaddress": {**_ref("Address"), "description": "A P2PKH address; set once, never replaced."}})
    s["Acknowledgement"] = _response({"timestamp": _ref("ServerTimestamp"), "request": _ref("Request")})
    return s


def _request(fields: tuple[binding.Field, ...], properties: dict) -> dict:
    """A request object: the properties in wire order; required = binding's required fields."""
    if {f.name for f in fields} != set(properties):
        raise ValueError(f"the document's fields {list(properties)} are not web/api/binding.py's {fields}")
    return {"type": "object", "properties": properties,
            "required": [name for name in properties if any(f.name == name and f.required for f in fields)],
            "description": "Keys match case-insensitively, the last duplicate wins and unknown keys are "
                           "ignored, as in the Go vspd's binding; a type mismatch is code 0."}


def _response(properties: dict) -> dict:
    """An answer object: every field always present, in this (the wire) order, nothing else."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


_SIGNED_HEADER = {SIGNATURE_HEADER: {"$ref": "#/components/headers/ServerSignature"}}


def _json(schema: dict, example_name: str | None = None) -> dict:
    content: dict[str, Any] = {"schema": schema}
    if example_name is not None:
        content["examples"] = {example_name: {"$ref": f"#/components/examples/{example_name}"}}
    return {"application/json": content}


def _answers(ok: dict, statuses: tuple[int, ...]) -> dict:
    out: dict[str, Any] = {"200": ok}
    for status in statuses:
        codes = ", ".join(str(int(c)) for c in _error_statuses()[status])
        content = _json(_ref(f"Error{status}"))
        if status == 400:
            content["application/json"]["examples"] = {
                name: {"$ref": f"#/components/examples/{name}"} for name in ("UnknownTicket", "BadSignature")}
        out[str(status)] = {"description": f"Signed error: codes {codes}.", "headers": _SIGNED_HEADER,
                            "content": content}
    return out


def _operation(op_id: str, summary: str, description: str, request: str | None, ok_schema: str,
               ok_example: str, statuses: tuple[int, ...] = (400, 500), signed: bool = True) -> dict:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "description": description, "tags": ["API v3"]}
    if signed:
        op["parameters"] = [_client_signature(ok_example + "Req")]
    if request is not None:
        op["requestBody"] = {"required": True, "content": _json(_ref(request), ok_example + "Req")}
    op["responses"] = _answers({"description": "Success.", "headers": _SIGNED_HEADER,
                                "content": _json(_ref(ok_schema), ok_example)}, statuses)
    if ok_example in LINKS:
        op["responses"]["200"]["links"] = {
            f"{target}": {"operationId": target, "description": "The same ticket.",
                          "requestBody": {"tickethash": "$request.body#/tickethash"}} for target in LINKS[ok_example]}
    return op


def _client_signature(example: str) -> dict:
    """The VSP-Client-Signature parameter, with the signature of the operation's recorded request as example."""
    return {"name": CLIENT_SIGNATURE_HEADER, "in": "header", "required": True,
            "description": "Base64 of a 65-byte compact recoverable secp256k1 signature of the exact request "
                           "body, by the ticket's commitment address (ticket output 1) or its alternate "
                           "signing address; message magic \"ExchangeCoin Signed Message:\\n\", digest single "
                           "SHA-256. Missing: code 0; wrong: code 10 (checked once the ticket is found: code 6 "
                           "if neither the VSP nor its node knows it).",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9+/]{87}=$", "minLength": 88, "maxLength": 88,
                       "examples": [SIGNATURES[example]]}}


def _paths() -> dict:
    p = {
        "/api/v3/vspinfo": {"get": _operation(
            "vspinfo", "The VSP's fee, state, signing key and ticket counts.",
            "No request body, no signature. The signed body is kept until the numbers are refreshed (see "
            "`timestamp`). Differs from the Go vspd: both EXCCoin/vspd's `revoked` and decred/vspd's `expired` "
            "and `missed` are present.",
            None, "VspInfoResponse", "VspInfo", (500,), signed=False)},
        "/api/v3/feeaddress": {"post": _operation(
            "feeaddress", "Step 1: register a ticket, get its fee address and amount.",
            "Checks in order: VSP closed (code 2), the ticket and its parent (broadcast if the node lacks them; "
            "codes 0, 13, 14), the client signature (codes 0, 6, 10), fee already paid (3), the ticket can "
            f"still vote (7). The fee address of a ticket never changes. {GO_INTAKE} {GO_BODY_LIMIT}",
            "FeeAddressRequest", "FeeAddressResponse", "FeeAddress")},
        "/api/v3/payfee": {"post": _operation(
            "payfee", "Step 2: pay the fee and hand over the voting key.",
            "Checks in order: VSP closed (2), the client signature (0, 6, 10), fee already paid (3), the ticket "
            "can vote (7), quote expired (8), voting key (11), fee transaction (4, 5), voting key matches the "
            "ticket (11). Invalid vote preferences are logged and not stored, as in the Go vspd. If the ticket is "
            "confirmed the fee is broadcast at once (15, or 16 with HTTP 428 when its inputs are unknown). The "
            f"payment is committed before the answer. {GO_UNKNOWN_TICKET} {GO_INTAKE}",
            "PayFeeRequest", "Acknowledgement", "PayFee", (400, 428, 500))},
        "/api/v3/ticketstatus": {"post": _operation(
            "ticketstatus", "What the VSP knows of a ticket (works while closed).",
            f"No timestamp in the request. {GO_UNKNOWN_TICKET}",
            "TicketStatusRequest", "TicketStatusResponse", "TicketStatus")},
        "/api/v3/setvotechoices": {"post": _operation(
            "setvotechoices", "Change a paid ticket's vote preferences (works while closed).",
            "The maps are merged into the stored ones (a key absent from the request is kept). Codes: 1 if no "
            "voting wallet is reachable, 6, 12 (no fee yet), 7 (already voted or revoked), 17 (timestamp not "
            "greater than every earlier one of this ticket's), 9 (invalid choice; nothing stored). Differs from "
            "EXCCoin/vspd: an invalid treasury or tspend policy stops the request (that vspd stores it and "
            f"writes a second body). {GO_UNKNOWN_TICKET}",
            "SetVoteChoicesRequest", "Acknowledgement", "SetVoteChoices")},
        "/api/v3/setaltsignaddr": {"post": _operation(
            "setaltsignaddr", "Step 0 (optional): the one alternate address that may sign for a ticket.",
            "Signed by the ticket's commitment address. Codes: 2, 0 (already set, not a P2PKH address), 7, and "
            "those of feeaddress's ticket checks.",
            "SetAltSignAddrRequest", "Acknowledgement", "SetAltSignAddr")},
    }
    if {path: next(iter(ops)).upper() for path, ops in p.items()} != {
            path: method for path, (method, _) in api.ROUTES.items()}:
        raise ValueError("the document must list exactly web/api/routes.py's routes")
    p[PATH] = {"get": {
        "operationId": "openapi", "summary": "This document.", "tags": ["Documents"],
        "description": "The same bytes for the life of the process; ETag and Cache-Control let clients keep them.",
        "responses": {"200": {"description": "The OpenAPI document.",
                              "headers": {"ETag": {"schema": {"type": "string"}},
                                          "Cache-Control": {"schema": {"type": "string"}}},
                              "content": {"application/json": {"schema": {"type": "object",
                                                                          "required": ["openapi", "paths"]}}}},
                      "304": {"description": "Not modified (If-None-Match matched the ETag)."}}}}
    return p


def _examples() -> dict:
    """Requests and answers of a frontend on the fakes, as tests/helpers/record_openapi_examples.py recorded
    them."""
    return {name: {"summary": summary, "value": value} for name, (summary, value) in EXAMPLES.items()}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vspd API v3 (ExchangeCoin)", "version": __version__,
            "description": (
                "The vspd API v3 that exccwallet 2.8 and Exilibrium 1.8 speak, as this VSP serves it. "
                f"Every JSON answer, success or error, carries `{SIGNATURE_HEADER}`; every request about a "
                f"ticket carries `{CLIENT_SIGNATURE_HEADER}`. Errors are `{{\"code\", \"message\"}}` with HTTP "
                "400, or 500 for codes 1, 14 and 15, or 428 for code 16; any other code would be 500. "
                "Amounts are integer atoms. Where this VSP differs from the Go vspd, the operation says so. "
                "Outside the API's own answers: a POST that a browser marks as cross-site (`Sec-Fetch-Site` other "
                "than same-origin or none, or an `Origin` of another host) is refused with a plain-text, unsigned "
                "400 `CSRF failure`, as decred/vspd 1.5 does (wallets send neither header); an unknown path is a "
                "plain 404 and a wrong method a 405.")},
        "servers": [{"url": "/"}],
        "tags": [{"name": "API v3"}, {"name": "Documents"}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "headers": {"ServerSignature": {
                "required": True,
                "description": "Base64 of the ed25519 signature (RFC 8032) of the exact body bytes, by the key "
                               "`pubkey` of vspinfo. On every JSON answer, 200 and errors alike.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9+/]{86}==$", "minLength": 88,
                           "maxLength": 88}}},
            "examples": _examples(),
        },
    }


@lru_cache(maxsize=1)
def document_bytes() -> bytes:
    """The document as served: sorted keys would reorder the fields, so it is dumped in build order."""
    return json.dumps(document(), ensure_ascii=False, indent=1).encode()


@lru_cache(maxsize=1)
def served() -> dict:
    """The document as a client reads it back from the served bytes (for the /api page; not to be changed)."""
    return json.loads(document_bytes())


def etag() -> str:
    return '"' + hashlib.sha256(document_bytes()).hexdigest()[:32] + '"'


async def serve(request: web.Request) -> web.Response:
    headers = {"ETag": etag(), "Cache-Control": "public, max-age=3600"}
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    return web.Response(body=document_bytes(), content_type="application/json", charset="utf-8", headers=headers)


def endpoints(doc: dict) -> list[dict]:
    """What the /api page shows of each API v3 operation, read from the document."""
    schemas = doc["components"]["schemas"]

    def fields(content: dict | None) -> list[str]:
        if content is None:
            return []
        ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        return list(schemas[ref]["properties"])

    rows = []
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/v3/"):
            continue
        for method, op in ops.items():
            body = op.get("requestBody")
            rows.append({"method": method.upper(), "path": path, "summary": op["summary"],
                         "request": fields(body["content"] if body else None),
                         "answer": fields(op["responses"]["200"]["content"])})
    return rows


def error_codes(doc: dict) -> list[tuple[int, str, int]]:
    """(code, default message, HTTP status) of every error code, read from the document."""
    out = []
    for name, schema in doc["components"]["schemas"].items():
        if name.startswith("Error"):
            status = int(name[len("Error"):])
            out += [(c["const"], c["title"], status) for c in schema["properties"]["code"]["oneOf"]]
    return sorted(out)
