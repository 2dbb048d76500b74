"""`vspd --role=frontend|voter`: parse, validate, log, run until a signal."""

import asyncio
import logging
import signal
import sys

import uvloop

from vspd.base import config, logs
from vspd.base.errors import StartupError

from .version import __version__

log = logging.getLogger("vspd")


async def run(cfg: config.Config, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    if cfg.role == "frontend":
        from vspd.roles.frontend import Frontend
        await Frontend(cfg).run(stop)
    else:
        from vspd.roles.voter import Voter
        await Voter(cfg).run(stop)


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = config.load(sys.argv[1:] if argv is None else argv)
    except config.ConfigError as e:
        print(f"vspd: {e}", file=sys.stderr)
        return 2
    if cfg is None:
        print(f"vspd version {__version__}")
        return 0
    logs.setup(cfg.loglevel, cfg.logdir, cfg.maxlogsize, cfg.logstokeep, cfg.secrets())
    log.info("vspd version %s, role %s, network %s, home %s", __version__, cfg.role, cfg.net.name,
             cfg.homedir)
    warning = config.exposed(cfg.configfile)
    if warning:
        log.warning("%s", warning)
    for name in cfg.short_secrets():
        log.warning("option %s: shorter than %d characters, too short to be a secret (mainnet refuses it); "
                    "the log hides it only where it stands as a whole word", name, config.MIN_SECRET_CHARS)
    try:
        uvloop.run(run(cfg))  # the same asyncio program, in fewer cycles per request
    except StartupError as e:
        log.critical("%s", e)
        print(f"vspd: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
