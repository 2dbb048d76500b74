"""Logging to stdout and a rotating file, with secrets scrubbed from every line."""

import logging
import logging.handlers
import re
import sys
from pathlib import Path

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


def setup(level: str, logdir: Path | None, max_mib: int = 10, keep: int = 20,
          secrets: list[str] = (), filename: str = "vspd.log") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    scrub = SecretFilter(secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if logdir is not None:
        logdir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            logdir / filename, maxBytes=max_mib * 1024 * 1024, backupCount=keep, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        h.addFilter(scrub)
        root.addHandler(h)
    root.setLevel(LEVELS[level])
    for noisy in ("aiosqlite", "asyncio", "websockets", "hpack"):
        logging.getLogger(noisy).setLevel(max(LEVELS[level], logging.INFO))
    # aiorpcx's INFO lines are its own tuning ("changing outgoing request concurrency"), not events.
    logging.getLogger("aiorpcx").setLevel(max(LEVELS[level], logging.WARNING))
