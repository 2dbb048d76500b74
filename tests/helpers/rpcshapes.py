"""The shape of an exccd or exccwallet answer, and the file of real answers the fakes are held to.

tests/data/rpc_shapes.json holds the real peers' answer to every call the
VSP makes, per situation (written by `python -m vspd.simnet.shapes`). Two
answers to one call match when their shapes do: the same object keys, the
same JSON types (an int and a float are both a number), the same nesting,
and for a list the same set of element shapes; the words of `status` (a
ticket's) and `type` (an output script's) are part of it, as the code and
its readers act on them. An error matches on its code and its message,
transaction and block hashes aside.
"""

import json
import re
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parents[1] / "data" / "rpc_shapes.json"
WORDS = ("status", "type")  # keys whose string values are a vocabulary, not data
_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def load() -> dict:
    return json.loads(RECORDED.read_text())


def shape(value: Any, key: str = "") -> Any:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return f"string {value!r}" if key in WORDS else "string"
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        kinds = {json.dumps(shape(v), sort_keys=True): shape(v) for v in value}
        return [kinds[k] for k in sorted(kinds)]
    raise TypeError(f"not JSON: {value!r}")


def answer_shape(entry: dict) -> dict:
    """What two answers to one call must share: the result's shape, or the error's code and words."""
    if "error" in entry:
        error = entry["error"]
        return {"error": {"code": error.get("code"), "message": _HASH.sub("<hash>", str(error.get("message")))}}
    if entry.get("notification"):
        return {"notification": shape(entry["params"])}
    return {"result": shape(entry["result"])}


def differences(real: Any, other: Any, path: str = "") -> list[str]:
    """Where the shape `other` departs from the shape `real`, one line each."""
    if isinstance(real, dict) and isinstance(other, dict):
        out = [f"{path}.{k}: missing" for k in real if k not in other]
        out += [f"{path}.{k}: not in the real answer" for k in other if k not in real]
        return out + [d for k in real if k in other for d in differences(real[k], other[k], f"{path}.{k}")]
    if isinstance(real, list) and isinstance(other, list):
        if real == other:
            return []
        if len(real) == len(other) == 1:
            return differences(real[0], other[0], f"{path}[]")
        out = []
        for kind in (k for k in real if k not in other):
            out += [f"{path}[]: no element like a real one, the nearest:"] + _nearest(
                [differences(kind, o, f"{path}[]") for o in other])
        for kind in (k for k in other if k not in real):
            out += [f"{path}[]: an element unlike any real one, the nearest:"] + _nearest(
                [differences(r, kind, f"{path}[]") for r in real])
        return out
    return [] if real == other else [f"{path or 'answer'}: real {_brief(real)}, here {_brief(other)}"]


def _nearest(found: list[list[str]]) -> list[str]:
    return ["  " + line for line in min(found, key=len)] if found else []


def _brief(s: Any) -> str:
    text = json.dumps(s)
    return text if len(text) < 80 else text[:77] + "..."
