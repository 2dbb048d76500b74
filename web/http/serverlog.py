"""aiohttp's server logger, told that a malformed request is the client's error, not the server's.

aiohttp logs every request its parser refuses (a NUL or a bare CR in a
header, a line too long, a bad chunk) as an ERROR with a traceback, and
answers 400 itself: anyone could fill the log and page the operator.
Such a refusal is one DEBUG line here, its text shortened and quoted (it
holds the client's bytes); any other error keeps its ERROR and traceback.
"""

import logging
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

SHOWN = 100  # characters of the parser's complaint kept in the line


class ServerLog(logging.LoggerAdapter):
    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            first = str(exc_info.message).strip().splitlines()[0] if exc_info.message else ""
            self.debug(f"{msg}: malformed request (%d %s)", *args, exc_info.code, repr(first[:SHOWN]))
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


LOGGER = ServerLog(logging.getLogger("aiohttp.server"), {})
