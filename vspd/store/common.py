"""What every part of the store shares: its errors, its clock and its day.

Apart from db.py because db.py imports the parts (tickets.py, record.py,
...) to join them into `Store`: the parts import these from here, so no
import runs in a circle. db.py (and the package) still export the errors.
"""

import time


class StoreError(Exception):
    """A database operation could not be done (duplicate, missing row, ...)."""


class SchemaError(StoreError):
    """The database's schema version is not one this code can use."""


class WriteFailed(StoreError):
    """A write the disk refused (full, or an I/O error): rolled back, nothing of it kept.

    The process goes on: reads still work, and the next write (the next block
    pass redoes what failed) succeeds once the disk has room again.
    """


def _now() -> int:
    return int(time.time())


DAY = 86400
