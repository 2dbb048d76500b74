"""Structured concurrency helpers: every task has an owner that awaits it."""

import asyncio
from typing import Coroutine


async def run_until(stop: asyncio.Event, *coros: Coroutine) -> None:
    """Run `coros` in one task group until `stop` is set, then cancel and await them.

    A task that fails takes the group down with it (and the error out), as
    in ElectrumX's controller: nothing keeps running unowned.
    """
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(c) for c in coros]
        await stop.wait()
        for t in tasks:
            t.cancel()


async def every(seconds: float, fn, *, first_delay: float | None = None) -> None:
    """Call `await fn()` forever, `seconds` apart; errors are fn's to handle."""
    await asyncio.sleep(seconds if first_delay is None else first_delay)
    while True:
        await fn()
        await asyncio.sleep(seconds)
