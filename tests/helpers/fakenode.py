"""A fake exccd serving a fake chain, with our own client connected to it: what pipeline tests start."""

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fakes.exccd import FakeChain, FakeExccd
from rpcclient import Exccd


@asynccontextmanager
async def exccd_on(chain: FakeChain) -> AsyncIterator[tuple[FakeExccd, Exccd]]:
    """(the fake node, our connected client); both stopped on the way out."""
    node = FakeExccd(chain)
    await node.start()
    exccd = Exccd(chain.net, "127.0.0.1", node.port, node.user, node.password, node.cert_pem)
    runner = asyncio.create_task(exccd.run())
    try:
        assert await exccd.wait_connected(5)
        yield node, exccd
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await node.stop()
