"""The OpenAPI document of API v3 (web/api/openapi.py): valid, true to the wire types, served, and held to the
server by schemathesis against a live frontend process."""

import asyncio
import base64
import json
import os
import re
import sqlite3
import sys
from types import SimpleNamespace

import jsonschema
import pytest
from openapi_spec_validator import validate

from chainbuilders import Key, make_fee_tx
from procs import BIN, Network
from vspd.chain import address
from vspd.chain.message import sign_message
from vspd.chain.params import SIMNET
from web.api import openapi
from web.api.routes import ROUTES
from web.api.openapi_examples import EXAMPLES
from web.api.wire import DEFAULT_MESSAGES, ErrorCode, Signer, http_status

SCHEMATHESIS_EXAMPLES = 60  # per operation and phase: about a minute and a half on a busy 2-core machine
SCHEMATHESIS_SEED = 24


def schema_validator(doc: dict, schema: dict) -> jsonschema.Draft202012Validator:
    """A validator of `schema` whose "#/components/..." references resolve in `doc`."""
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def test_document_is_valid_openapi_3_1():
    doc = openapi.served()
    validate(doc)
    assert doc["openapi"] == "3.1.0"


def test_every_example_conforms_to_its_schema():
    doc = openapi.served()
    used = set()
    for path, ops in doc["paths"].items():
        for op in ops.values():
            pieces = [op.get("requestBody", {})] + list(op["responses"].values())
            for piece in pieces:
                content = piece.get("content", {}).get("application/json", {})
                for ref in content.get("examples", {}).values():
                    name = ref["$ref"].rsplit("/", 1)[1]
                    used.add(name)
                    value = doc["components"]["examples"][name]["value"]
                    schema_validator(doc, content["schema"]).validate(value)
            for param in op.get("parameters", []):
                for value in param["schema"].get("examples", []):
                    schema_validator(doc, param["schema"]).validate(value)
    assert used == set(EXAMPLES), set(EXAMPLES) ^ used


def test_error_codes_and_statuses_are_the_wire_ones():
    doc = openapi.served()
    assert openapi.error_codes(doc) == [(int(c), DEFAULT_MESSAGES[c], http_status(c)) for c in ErrorCode]
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for status, answer in op["responses"].items():
                if status != "200" and path.startswith("/api/v3/"):
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith(f"/Error{status}")
                    assert "VSP-Server-Signature" in answer["headers"]


def test_signature_patterns_match_real_signatures():
    """Regression: the document said VSP-Client-Signature ends in "==", but 65 bytes in base64 end in one "=":
    schemathesis dropped the recorded, correctly signed example requests as invalid."""
    doc = openapi.served()
    client = doc["paths"]["/api/v3/payfee"]["post"]["parameters"][0]
    assert client["name"] == "VSP-Client-Signature"
    server = doc["components"]["headers"]["ServerSignature"]["schema"]
    for body in (b"{}", b'{"tickethash":"' + b"ab" * 32 + b'"}', os.urandom(300)):
        signature = base64.b64encode(sign_message(Key(SIMNET).secret, body)).decode()
        schema_validator(doc, client["schema"]).validate(signature)
        schema_validator(doc, server).validate(Signer(os.urandom(32)).sign(body))


def test_page_rows_are_the_routes():
    rows = openapi.endpoints(openapi.served())
    assert [(r["method"], r["path"]) for r in rows] == [(m, p) for p, (m, _) in ROUTES.items()]
    assert rows[1]["request"] == ["timestamp", "tickethash", "tickethex", "parenthex"]


async def test_served_cacheable_and_linked(vsp):
    async with vsp.client.http.get(vsp.url + openapi.PATH) as r:
        body = await r.read()
        assert r.status == 200 and r.headers["Content-Type"] == "application/json; charset=utf-8"
        etag, cache = r.headers["ETag"], r.headers["Cache-Control"]
    assert body == openapi.document_bytes() and "max-age" in cache
    async with vsp.client.http.get(vsp.url + openapi.PATH, headers={"If-None-Match": etag}) as r:
        assert r.status == 304 and await r.read() == b"" and r.headers["ETag"] == etag
    async with vsp.client.http.get(vsp.url + "/api") as r:
        page = await r.text()
    assert f'href="{openapi.PATH}"' in page
    for row in openapi.endpoints(openapi.served()):
        assert f"{row['method']} {row['path']}" in page and ", ".join(row["answer"]) in page
    for code, message, status in openapi.error_codes(openapi.served()):
        assert re.search(f"<td>{code}</td><td>{re.escape(message)}</td><td>{status}</td>", page), code


async def schemathesis(cwd, url: str, *args: str) -> str:
    """Run schemathesis's CLI on the live frontend with every check; its report, once it passed."""
    helpers = os.path.normpath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "helpers"))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [helpers, os.environ.get("PYTHONPATH")]))}
    proc = await asyncio.create_subprocess_exec(
        BIN / "schemathesis", "--no-color", "--config-file", os.path.join(helpers, "schemathesis.toml"), "run",
        url + openapi.PATH, "--checks", "all", "--request-timeout", "10", "--max-failures", "20", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    report = out.decode(errors="replace")
    sys.stdout.write(report[-3000:])
    assert proc.returncode == 0, report[-20000:]
    return report


@pytest.mark.slow
async def test_schemathesis_finds_nothing_against_a_live_frontend(tmp_path):
    """Every operation, positive and negative data, every check of schemathesis, the recorded signed examples."""
    net = await Network.create(tmp_path / "net", nvoters=1)
    try:
        await net.start_frontend(wait_healthy=1)
        # The recorded examples walk one ticket through the API in order (feeaddress before payfee): one worker.
        report = await schemathesis(tmp_path, net.url, "--phases", "examples", "--workers", "1")
        assert re.search(r"Examples.*\n\s*\n\s*✅ 5 passed", report), report
        report = await schemathesis(tmp_path, net.url, "--phases", "coverage,fuzzing,stateful", "--workers", "2",
                                    "--max-examples", str(SCHEMATHESIS_EXAMPLES), "--seed", str(SCHEMATHESIS_SEED))
        assert re.search(r"Stateful.*\n\s*\n.*Scenarios", report), report
        # The recorded requests, correctly signed, were taken and committed (not only answered 400-or-200).
        db = sqlite3.connect(f"file:{net.home}/data/simnet/vspd.db?mode=ro", uri=True)
        try:
            paid = EXAMPLES["PayFeeReq"][1]["tickethash"]
            alt = EXAMPLES["SetAltSignAddrReq"][1]
            assert db.execute("SELECT fee_tx_status FROM tickets WHERE hash = ?", (paid,)).fetchone() == ("received",)
            assert db.execute("SELECT address FROM alt_sign_addrs WHERE ticket_hash = ?",
                              (alt["tickethash"],)).fetchone() == (alt["altsignaddress"],)
            assert db.execute("SELECT count(*) FROM vote_changes WHERE ticket_hash = ?", (paid,)).fetchone() == (2,)
        finally:
            db.close()
        assert net.tracebacks() == 0
    finally:
        await net.close()


async def test_signed_flow_answers_conform(vsp):
    """Each answer of a signed ticket's whole flow, 200 and errors, is what the document says of its operation.

    Regression: ticketstatus answered policy maps under the request's bound of 3 entries, but setvotechoices
    merges maps, so a ticket's stored tspend policies can be more (schemathesis cannot sign, so cannot see it).
    """
    doc = openapi.served()

    def check(path: str, reply) -> None:
        op = next(iter(doc["paths"][path].values()))
        answer = op["responses"][str(reply.status)]
        schema_validator(doc, answer["content"]["application/json"]["schema"]).validate(reply.json)
        schema_validator(doc, doc["components"]["headers"]["ServerSignature"]["schema"]).validate(reply.signature)

    c, t = vsp.client, vsp.new_ticket()
    check("/api/v3/vspinfo", await c.vspinfo())
    q = await c.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    check("/api/v3/feeaddress", q)
    fee = make_fee_tx(address.decode(q.json["feeaddress"], SIMNET), q.json["feeamount"]).serialize().hex()
    check("/api/v3/payfee", await c.payfee(t.commitment.secret, t.hash, fee, Key(SIMNET).wif))  # code 11
    check("/api/v3/payfee", await c.payfee(t.commitment.secret, t.hash, fee, t.voting.wif))
    check("/api/v3/payfee", await c.payfee(t.commitment.secret, t.hash, fee, t.voting.wif))  # code 3
    for i in range(2):
        tspend = {f"{i}{k}".ljust(64, "a"): "yes" for k in range(3)}
        r = await c.setvotechoices(t.commitment.secret, t.hash, {}, tspend=tspend, timestamp=2**40 + i)
        assert r.status == 200, r.json
        check("/api/v3/setvotechoices", r)
    status = await c.ticketstatus(t.commitment.secret, t.hash)
    assert len(status.json["tspendpolicy"]) == 6
    check("/api/v3/ticketstatus", status)
    check("/api/v3/ticketstatus", await c.ticketstatus(Key(SIMNET).secret, t.hash))  # code 10
    alt = vsp.new_ticket()
    check("/api/v3/setaltsignaddr", await c.setaltsignaddr(alt.commitment.secret, alt.hash, alt.ticket_hex,
                                                           alt.parent_hex, str(Key(SIMNET).address)))


async def test_payfee_with_invalid_preferences_is_a_valid_request(vsp):
    """Regression: the document bound payfee's maps as setvotechoices's, but payfee takes the fee and ignores
    maps that do not validate (as the Go vspd): such a request is valid, and its answer a 200."""
    doc = openapi.served()
    schema = doc["paths"]["/api/v3/payfee"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    t = vsp.new_ticket()
    q = await vsp.client.feeaddress(t.commitment.secret, t.hash, t.ticket_hex, t.parent_hex)
    fee = make_fee_tx(address.decode(q.json["feeaddress"], SIMNET), q.json["feeamount"]).serialize().hex()
    votechoices, tspend, treasury = {"noagenda": "yes"}, {"nothex": "maybe"}, {"short": "no"}
    body = {"timestamp": 1, "tickethash": t.hash, "feetx": fee, "votingkey": t.voting.wif,
            "votechoices": votechoices, "tspendpolicy": tspend, "treasurypolicy": treasury}
    schema_validator(doc, schema).validate(body)
    r = await vsp.client.payfee(t.commitment.secret, t.hash, fee, t.voting.wif, votechoices, tspend, treasury)
    assert r.status == 200, r.json
    stored = await vsp.store.get_ticket(t.hash)
    assert (stored.vote_choices, stored.tspend_policy, stored.treasury_policy) == ({}, {}, {})


async def test_what_the_document_says_outside_the_api_answers(vsp):
    """The plain-text answers the document's description names, as they are."""
    info = openapi.served()["info"]["description"]
    assert "`CSRF failure`" in info and "404" in info and "405" in info
    headers = {"Origin": "https://evil.example", "Content-Type": "application/json"}
    async with vsp.client.http.post(vsp.url + "/api/v3/ticketstatus", data=b"{}", headers=headers) as r:
        assert (r.status, await r.text()) == (400, "CSRF failure") and "VSP-Server-Signature" not in r.headers
    async with vsp.client.http.get(vsp.url + "/api/v3/nothing") as r:
        assert r.status == 404 and r.content_type == "text/plain"
    async with vsp.client.http.get(vsp.url + "/api/v3/payfee") as r:
        assert r.status == 405 and r.headers["Allow"] == "POST"


def test_shape_check_fails_a_refusal_for_shape_only():
    """tests/helpers/schemathesis_hooks.py's own check can fail: a positive case refused for what the schema decides."""
    import schemathesis_hooks  # here: importing it registers its serializer and check with schemathesis

    def outcome(positive: bool, status: int, answer: dict) -> str:
        case = SimpleNamespace(meta=SimpleNamespace(generation=SimpleNamespace(
            mode=SimpleNamespace(is_positive=positive))))
        response = SimpleNamespace(status_code=status, content=json.dumps(answer).encode())
        try:
            schemathesis_hooks.shape_accepted(None, response, case)
            return "ok"
        except AssertionError:
            return "failed"

    assert outcome(True, 400, {"code": 0, "message": 'field "timestamp" is required'}) == "failed"
    assert outcome(True, 400, {"code": 0, "message": "invalid ticket hash"}) == "failed"
    assert outcome(True, 400, {"code": 0, "message": "cannot decode ticket hex"}) == "ok"  # no schema can say
    assert outcome(True, 400, {"code": 10, "message": "bad request signature"}) == "ok"
    assert outcome(False, 400, {"code": 0, "message": 'field "timestamp" is required'}) == "ok"
