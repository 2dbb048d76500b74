"""What schemathesis is told of API v3 beyond the document (loaded by tests/web/api/test_openapi.py through
SCHEMATHESIS_HOOKS).

- Bodies go out as exccwallet sends them, compact JSON (Go's json.Marshal),
  so the document's recorded example requests keep their recorded
  VSP-Client-Signature and are accepted: the examples phase walks a real
  ticket through feeaddress, payfee, ticketstatus and setvotechoices.
- A schema-valid request may still be refused for what no schema can say (a
  signature by a key the tool does not hold, a ticket the node does not
  know, hex that is no transaction), with a signed 400 and its code. It may
  not be refused for what the schema does say: a positive case answered by
  the binding's own complaints (a field missing or of the wrong type, a bad
  ticket hash, a map too large, not JSON) means the document and the server
  disagree.
"""

import json
import re

import schemathesis

# The messages of web/api/binding.py and web/ticketchecks.check_hash: what the schema alone decides.
SCHEMA_LEVEL = re.compile(r'^(EOF|invalid JSON: .*|request body must be a JSON object.*|field "[a-z]+".*'
                          r'|invalid ticket hash)$', re.S)


@schemathesis.serializer("application/json")
def compact_json(ctx, value) -> bytes:
    if isinstance(value, bytes):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8",
                                                                                              "surrogatepass")


@schemathesis.check
def shape_accepted(ctx, response, case) -> bool | None:
    """A positive case may get code 6, 10, 13, ... but never a code-0 complaint about its shape."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        answer = json.loads(response.content)
    except ValueError:
        return None  # response_schema_conformance reports a body that is not JSON
    if isinstance(answer, dict) and answer.get("code") == 0 and SCHEMA_LEVEL.match(str(answer.get("message"))):
        raise AssertionError(f"schema-valid request refused for its shape: code 0, {answer['message']!r}")
    return None
