"""Logging to stdout and a rotating file, with secrets scrubbed from every line and floods held back.

A line repeated fast is limited (RepeatLimit): each message (its logger,
level and format string, whatever its arguments) is written at most
REPEAT_BURST times per REPEAT_WINDOW seconds; the first one written after
that says how many were held back. This holds for every WARNING and above,
and for every line of the web edge (web.*, aiohttp.*), where a client
decides how often a line is written. A client's fault that aiohttp logs
as an error (a request it could not parse, a client gone mid-request) is
one DEBUG line (ClientFaults): ERROR is for our faults.
"""

import logging
import logging.handlers
import re
import sys
import time
from pathlib import Path

from aiohttp import http_exceptions

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
FORMAT = "%(asctime)s [%(levelname).3s] %(name)s: %(message)s"

# Base58 private keys (WIF: mainnet 5/K/L, testnet/simnet 9/c) and extended private keys.
_WIF = re.compile(r"\b[59KLc][1-9A-HJ-NP-Za-km-z]{50,51}\b")
_XPRV = re.compile(r"\b(?:xprv|tprv|sprv)[1-9A-HJ-NP-Za-km-z]{100,112}\b")


WHOLE_WORD_BELOW = 8  # characters: a secret shorter than this is hidden only where it stands alone


def _whole_value(secret: str) -> str:
    """A pattern for `secret` where it appears as a value.

    A password 'p' must not turn 'vspd' into 'vs***d': a short secret that
    begins or ends with a word character is hidden only where the text
    beside it is not one. A longer secret is hidden wherever it appears
    (it cannot occur in other text by chance, and may be glued to a value).
    """
    if len(secret) >= WHOLE_WORD_BELOW:
        return re.escape(secret)
    left = r"(?<!\w)" if re.match(r"\w", secret[0]) else ""
    right = r"(?!\w)" if re.match(r"\w", secret[-1]) else ""
    return left + re.escape(secret) + right


class SecretFilter(logging.Filter):
    """Replaces configured secrets (whole values) and anything shaped like a private key."""

    def __init__(self, secrets: list[str] = ()):
        super().__init__()
        unique = sorted({s for s in secrets if s}, key=len, reverse=True)  # a longer secret before its parts
        self._secrets = re.compile("|".join(_whole_value(s) for s in unique)) if unique else None

    def scrub(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub("***", text)
        text = _WIF.sub("[private key]", text)
        return _XPRV.sub("[private key]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self.scrub(msg)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if clean != msg or record.args:
            record.msg, record.args = clean, ()
        return True


REPEAT_BURST = 10
REPEAT_WINDOW = 60.0
_EDGE = ("web.", "aiohttp.")


class RepeatLimit(logging.Filter):
    """At most `burst` lines of one message per `window` seconds; then one that says how many were held."""

    def __init__(self, burst: int = REPEAT_BURST, window: float = REPEAT_WINDOW, clock=time.monotonic,
                 max_messages: int = 10000):
        super().__init__()
        self.burst, self.window, self.clock, self.max_messages = burst, window, clock, max_messages
        self._seen: dict[tuple, list] = {}  # (logger, level, format) -> [window start, written, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and not record.name.startswith(_EDGE):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.window:
            held = seen[2] if seen is not None else 0
            if len(self._seen) >= self.max_messages:  # forget rather than grow without bound
                self._seen.clear()
            self._seen[key] = [now, 1, 0]
            if held:
                record.msg, record.args = f"{record.getMessage()} ({held} more like it held back)", ()
            return True
        if seen[1] < self.burst:
            seen[1] += 1
            return True
        seen[2] += 1
        return False


class ClientFaults(logging.Filter):
    """aiohttp.server's "Error handling request" for a client's fault: one DEBUG line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.ERROR or not isinstance(
                exc, (ConnectionError, http_exceptions.HttpProcessingError)):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {exc}", ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


class LogFile(logging.handlers.RotatingFileHandler):
    """The rotating log file, on a disk that may fill up (it is the database's in the default layout).

    A line that cannot be written is dropped and counted: one line on stderr
    when it starts, not logging's traceback per line, and never an exception
    into the caller. The first line written again says how many were lost.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dropped = 0
        self._failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.dropped:
            self._failed = False
            note = logging.makeLogRecord({"name": "logs", "levelno": logging.WARNING, "levelname": "WARNING",
                                          "msg": f"{self.dropped} log lines lost: the log file could not be "
                                                 f"written"})
            super().emit(note)
            if self._failed:
                self.dropped += 1
                return
            self.dropped = 0
        self._failed = False
        super().emit(record)
        if self._failed:
            self.dropped += 1

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed = True
        if not self.dropped:
            try:
                sys.stderr.write(f"cannot write the log file {self.baseFilename}: {sys.exc_info()[1]}; "
                                 f"its lines are dropped until it can be written again\n")
            except (OSError, ValueError):
                pass


def setup(level: str, logdir: Path | None, max_mib: int = 10, keep: int = 20,
          secrets: list[str] = (), filename: str = "vspd.log") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    scrub = SecretFilter(secrets)
    server = logging.getLogger("aiohttp.server")
    for f in [f for f in server.filters if isinstance(f, ClientFaults)]:
        server.removeFilter(f)
    server.addFilter(ClientFaults())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if logdir is not None:
        logdir.mkdir(parents=True, exist_ok=True)
        handlers.append(LogFile(
            logdir / filename, maxBytes=max_mib * 1024 * 1024, backupCount=keep, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        h.addFilter(RepeatLimit())
        h.addFilter(scrub)
        root.addHandler(h)
    root.setLevel(LEVELS[level])
    for noisy in ("aiosqlite", "asyncio", "websockets", "hpack"):
        logging.getLogger(noisy).setLevel(max(LEVELS[level], logging.INFO))
    # aiorpcx's INFO lines are its own tuning ("changing outgoing request concurrency"), not events.
    logging.getLogger("aiorpcx").setLevel(max(LEVELS[level], logging.WARNING))
