"""The frontend's SQLite store (aiosqlite, WAL): the only state the VSP owns."""

from .db import SchemaError, Store, StoreError, WriteFailed
from .models import FeeXPub, Ticket, VoteChange

__all__ = ["Store", "StoreError", "SchemaError", "WriteFailed", "Ticket", "FeeXPub", "VoteChange"]
