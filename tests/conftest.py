"""Fixtures: a frontend on 127.0.0.1 with a fake exccd and a fresh database."""

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

# tests/ (for `fakes`, `conftest`) and tests/helpers/ (chainbuilders, procs, vspclient, ...) on the path; the
# repository root too, so that `web`, `rpcclient` are the real packages, not tests/web/, tests/rpcclient/.
sys.path[:0] = [str(Path(__file__).parent / "helpers"), str(Path(__file__).parent), str(Path(__file__).parents[1])]

from chainbuilders import Key, make_parent, make_ticket  # noqa: E402
from fakes.exccd import FakeChain, FakeExccd  # noqa: E402
from rpcclient import Exccd  # noqa: E402
from vspd.chain import bip32  # noqa: E402
from vspd.chain.params import SIMNET  # noqa: E402
from vspd.store import Store  # noqa: E402
from vspd.base.sealing import Sealer  # noqa: E402
from vspclient import VSPClient  # noqa: E402
from web.http.app import start_runner  # noqa: E402
from web.api.context import AppContext  # noqa: E402
from web.http.fastlane import FastLaneSite  # noqa: E402
from web.api.wire import Signer  # noqa: E402

# The BIP32 test vector 1 key m/0H, a mainnet xpub; and the same key re-versioned for simnet.
MAINNET_XPUB = ("xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8"
                "PX9rL2dZXvgGDnw")
SIMNET_XPUB = str(bip32.ExtendedPublicKey(
    SIMNET, **{k: v for k, v in vars(bip32.decode_xpub(MAINNET_XPUB, bip32.NETWORKS["mainnet"])).items()
               if k != "net"}))


async def make_store(path: Path, xpub: str = SIMNET_XPUB) -> Store:
    store = await Store.open(path, Sealer(os.urandom(32)), create=True)
    await store.add_xpub(xpub)
    await store.set_key("signingseed", os.urandom(32))
    await store.set_key("cookiesecret", os.urandom(32))
    return store


@dataclass
class TicketFixture:
    voting: Key
    commitment: Key
    parent_hex: str
    ticket_hex: str
    hash: str


@dataclass
class VSP:
    chain: FakeChain
    node: FakeExccd
    store: Store
    ctx: AppContext
    client: VSPClient
    url: str
    site: FastLaneSite | None = None

    def new_ticket(self, confirmations: int | None = None, on_chain: bool = False) -> TicketFixture:
        voting, commit = Key(SIMNET), Key(SIMNET)
        parent = make_parent()
        t = make_ticket(voting, commit, parent)
        self.chain.add(parent, block=self.chain.height - 20)
        if on_chain or confirmations is not None:
            block = None if not confirmations else self.chain.height - confirmations + 1
            self.chain.add(t, block=block)
        return TicketFixture(voting, commit, parent.serialize().hex(), t.serialize().hex(), t.txid())


@pytest.fixture
async def vsp(tmp_path):
    chain = FakeChain(SIMNET)
    node = FakeExccd(chain)
    await node.start()
    store = await make_store(tmp_path / "vspd.db")
    exccd = Exccd(SIMNET, "127.0.0.1", node.port, node.user, node.password, node.cert_pem)
    import asyncio
    runner_task = asyncio.create_task(exccd.run())
    assert await exccd.wait_connected(5)
    ctx = AppContext(net=SIMNET, store=store, exccd=exccd, signer=Signer(await store.get_key("signingseed")),
                     vspfee=2.0, supportemail="ops@example.org")
    runner = await start_runner(ctx)
    site = FastLaneSite(ctx, runner, "127.0.0.1", 0)
    port = await site.start()
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield VSP(chain, node, store, ctx, VSPClient(http, url, ctx.signer.pubkey), url, site)
    await site.stop()
    await runner.cleanup()
    runner_task.cancel()
    await asyncio.gather(runner_task, return_exceptions=True)
    await store.close()
    await node.stop()


def make_certs(home: Path, names: str = "v1,v2,v3") -> Path:
    """The voter-link CA and certificates, as `vspadmin gencerts` writes them."""
    from vspd.admin import vspadmin as admin
    assert admin.main([f"--homedir={home}", "gencerts", f"--voters={names}"]) == 0
    return home / "certs"


@pytest.fixture
def still_clock(request):
    """The vsp fixture's clock held at one second: vspinfo's timestamp follows the clock (#22), and
    tests that compare two answers byte for byte must not see it tick between them."""
    if "vsp" in request.fixturenames:
        vsp = request.getfixturevalue("vsp")
        now = vsp.ctx.clock()
        vsp.ctx.clock = lambda: now


@contextlib.asynccontextmanager
async def served_voter(tmp_path: Path, carrier_dir: Path | None = None):
    """A VoterService on 127.0.0.1 over a fake exccd and wallet (and, given a folder, a carrier keeping its
    handed-over tickets there): yields (port, certs folder, chain, fake wallet, carrier or None)."""
    from fakes.exccwallet import FakeWallet
    from procs import free_port
    from rpcclient.exccwallet import ExccWallet
    from vspd.voter.service import VoterService, serve, server_credentials
    from vspd.voter.carrier import Carrier
    from vspd.voter.pending import PendingStore, open_sealer
    chain = FakeChain(SIMNET)
    node, wallet = FakeExccd(chain), FakeWallet(chain)
    await node.start()
    await wallet.start()
    exccd = Exccd(SIMNET, "127.0.0.1", node.port, node.user, node.password, node.cert_pem)
    w = ExccWallet(SIMNET, "127.0.0.1", wallet.port, wallet.user, wallet.password, wallet.cert_pem)
    tasks = [asyncio.create_task(exccd.run()), asyncio.create_task(w.run())]
    server = None
    try:
        assert await exccd.wait_connected(5) and await w.rpc.wait_connected(5)
        carrier = None
        if carrier_dir is not None:
            carrier = Carrier(PendingStore(carrier_dir, open_sealer(carrier_dir)), exccd, w, SIMNET)
        d = make_certs(tmp_path, "v1,v2")
        port = free_port()
        server = await serve(VoterService("simnet", exccd, w, carrier=carrier), f"127.0.0.1:{port}",
                             server_credentials((d / "voter-v1" / "ca.pem").read_bytes(),
                                                (d / "voter-v1" / "voter.pem").read_bytes(),
                                                (d / "voter-v1" / "voter.key").read_bytes()))
        yield port, d, chain, wallet, carrier
    finally:
        if server is not None:
            await server.stop(0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await node.stop()
        await wallet.stop()
