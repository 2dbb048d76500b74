"""`vspd-simnet`: this VSP on a local ExchangeCoin simnet, from the real exccd and exccwallet, in one command.

It finds or builds the peers, starts a mining exccd and a keeper wallet,
this VSP (frontend, voters with their own exccd and voting wallet, a fee
wallet), and a funded staker wallet that uses the VSP; then mines a block
every few seconds until Ctrl-C or SIGTERM, and stops everything it started.
"""

import argparse
import asyncio
import logging
import shutil
import signal
import sys
import time
from pathlib import Path

from .children import ChildError
from .kept import KeptError
from .network import SimnetVSP
from .reorg import mining_busy
from .peers import VSPD_GO, PeerError, default_cache, find, find_peers
from .stateroot import claim_root, default_root, prepare_root


def progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vspd-simnet", description="This VSP on a local ExchangeCoin simnet, from the "
                                "real exccd and exccwallet: one command, everything on 127.0.0.1.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""subcommands:
  vspd-simnet soak [--short] ...          the chaos soak (`vspd-simnet soak --help`)
  vspd-simnet reorg --depth N [--root]    reorganise the running network's last N blocks (1-5)""")
    p.add_argument("--root", type=Path, default=default_root(),
                   help="folder for all state and logs (default %(default)s)")
    p.add_argument("--keep", action="store_true", help="reuse the chain, wallets and VSP database in --root")
    p.add_argument("--block-interval", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between mined blocks (default %(default)s; 0 mines only at start)")
    p.add_argument("--voters", type=int, default=3, help="number of voters (default %(default)s)")
    p.add_argument("--vspfee", type=float, default=3.0, help="VSP fee percentage (default %(default)s)")
    p.add_argument("--shared-node", action="store_true",
                   help="voting wallets use the miner's exccd instead of one exccd each (fewer processes)")
    p.add_argument("--exccd", help="exccd binary to use (default: found or built)")
    p.add_argument("--exccwallet", help="exccwallet binary to use (default: found or built)")
    p.add_argument("--peer-cache", type=Path, default=None, help=f"where built peers are kept (default {default_cache()})")
    p.add_argument("--goproxy-mirror", type=Path, default=None,
                   help="file-based Go module mirror with the EXCCoin modules (default: VSPD_GOPROXY_MIRROR "
                        "or ../shared/goproxy beside the checkout)")
    p.add_argument("--build-only", action="store_true", help="find or build the peers, print their paths, exit")
    p.add_argument("--reference-vspd", action="store_true",
                   help="with --build-only: also the reference Go vspd (EXCCoin/vspd), for benchmarks and the import test")
    return p


def validate(args: argparse.Namespace) -> None:
    if not 0 <= args.block_interval <= 3600:
        raise SystemExit("vspd-simnet: --block-interval must be between 0 and 3600 seconds")
    if not 1 <= args.voters <= 5:
        raise SystemExit("vspd-simnet: --voters must be between 1 and 5")
    if not 0.01 <= args.vspfee <= 100:
        raise SystemExit("vspd-simnet: --vspfee must be between 0.01 and 100")
    if args.goproxy_mirror is not None and not args.goproxy_mirror.is_dir():
        raise SystemExit(f"vspd-simnet: --goproxy-mirror {args.goproxy_mirror} is not a folder")


def banner(net: SimnetVSP) -> str:
    s, vsp = net.staker, net.vsp
    request = '{"jsonrpc":"1.0","id":1,"method":"purchaseticket","params":["default",0,1,"",1]}'
    return f"""
The local VSP is up ({net.timings.get('network up', 0):.0f} s).
  site            {vsp.url}/   (admin: {vsp.url}/admin, password {vsp.adminpass})
  VSP pubkey      {vsp.pubkey}
  staker wallet   JSON-RPC https://{s.rpc_address}/  user {s.user}  password {s.password}
                  certificate {s.cert_path}
  state and logs  {net.root}  (logs/ holds one log per process)

Buy a ticket through the VSP with the staker wallet:
  curl -s --cacert {s.cert_path} --user {s.user}:{s.password} \\
       -d '{request}' https://{s.rpc_address}/
then watch it on {vsp.url}/ : fee confirmed after 6 blocks, voted soon after it goes live.
Ctrl-C stops everything.
"""


async def mine_forever(net: SimnetVSP, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        with mining_busy(net.root) as free:
            if not free:  # `vspd-simnet reorg` is at work: no block meanwhile
                continue
            height = await net.chain.mine(1)
        if height % 10 == 0:
            progress(f"height {height}")


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    binaries = await asyncio.to_thread(find_peers, args.exccd, args.exccwallet, args.peer_cache,
                                       args.goproxy_mirror, progress)
    if args.build_only:
        print(f"exccd      {binaries.exccd}\nexccwallet {binaries.exccwallet}")
        if args.reference_vspd:
            go_vspd = await asyncio.to_thread(find, VSPD_GO, None, args.peer_cache, args.goproxy_mirror, progress)
            print(f"vspd (Go)  {go_vspd}")
        return 0
    net = SimnetVSP(binaries, args.root, voters=args.voters, vspfee=args.vspfee,
                    own_voter_nodes=not args.shared_node, progress=progress)
    try:
        async with asyncio.TaskGroup() as tg:
            starting = tg.create_task(net.start())
            stopping = tg.create_task(stop.wait())
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                starting.cancel()
                return 130
            print(banner(net), flush=True)
            miner = tg.create_task(mine_forever(net, args.block_interval)) if args.block_interval else None
            await stop.wait()
            if miner is not None:
                miner.cancel()
        return 0
    finally:
        progress("stopping")
        await net.stop()
        progress("stopped")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["soak"]:  # `vspd-simnet soak ...`: the chaos soak (issue 21), in its own module
        from vspd.simnet.soak.run import main as soak_main
        return soak_main(argv[1:])
    if argv[:1] == ["reorg"]:  # `vspd-simnet reorg --depth N`: reorganise the running network (issue 31)
        from vspd.simnet.reorg import main as reorg_main
        return reorg_main(argv[1:])
    args = build_parser().parse_args(argv)
    validate(args)
    logging.basicConfig(level=logging.WARNING)
    lock = None if args.build_only else claim_root(args.root, args.keep)  # before anything else: a second run refuses
    try:
        return asyncio.run(run(args))
    except (PeerError, ChildError, KeptError) as e:
        print(f"vspd-simnet: {e}", file=sys.stderr)
        return 1
    except ExceptionGroup as eg:
        for e in eg.exceptions:
            print(f"vspd-simnet: {e}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.release()

if __name__ == "__main__":
    sys.exit(main())
