"""The real peers still answer in the shapes tests/data/rpc_shapes.json holds.

The recorder (vspd/simnet/shapes.py) makes every call the VSP makes, in
every situation, on the session's network; each answer must have the
recorded shape, which the fakes are held to (tests/rpcclient/test_rpc_shapes.py).
`python -m vspd.simnet.shapes --out tests/data/rpc_shapes.json` writes the
file again from a simnet of its own; VSPD_RECORD_SHAPES=FILE makes this
test write what it recorded there too.
"""

import os
from pathlib import Path

import pytest

from rpcshapes import answer_shape, differences, load
from vspd.simnet.shapes import SITUATIONS, record, write

pytestmark = [pytest.mark.realpeers, pytest.mark.asyncio(loop_scope="session")]


async def test_the_real_peers_answer_in_the_recorded_shapes(realnet, scenario_timer):
    answers = await record(realnet.net)
    if os.environ.get("VSPD_RECORD_SHAPES"):
        write(answers, Path(os.environ["VSPD_RECORD_SHAPES"]))
    recorded = load()["situations"]
    found = []
    for situation in SITUATIONS:
        real, kept = answer_shape(answers["situations"][situation]), answer_shape(recorded[situation])
        if real != kept:
            found += [f"{situation}:"] + ["  " + line for line in differences(real, kept)]
    assert not found, "the real peers answered unlike tests/data/rpc_shapes.json:\n" + "\n".join(found)
