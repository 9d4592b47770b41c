"""The durable state of ussdsim: SQLite (stdlib ``sqlite3``) behind a small Protocol.

One file, made on first start (``:memory:`` in tests), in WAL mode with
``synchronous=NORMAL``: a committed transaction survives the process being killed
(``kill -9``), which is the promise the gateway makes when it acknowledges a PDU or an
HTTP request only after the change is committed.  It does not promise survival of a
power cut; a lab that needs that sets ``synchronous=FULL`` (``durability="full"``).

The store owns the message queue of the gateway (SPEC GW-06, GW-07): messages are added
in batches (the gateway groups every message of one read from a socket into one
transaction, so commits cost per batch, not per message) and their states updated in
batches.  Message ids are allocated here, in memory, from the largest id on disk, so a
batch insert needs no round trip per row.

The operator core adds its tables as later schema versions (``services/schema.py``) and
reaches the connection through :meth:`SqliteStore.transaction`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final, NamedTuple, Protocol

from services.schema import MIGRATIONS

#: SMPP 3.4 §5.2.28 message_state values the queue uses.
ENROUTE: Final = 1
DELIVERED: Final = 2
EXPIRED: Final = 3
UNDELIVERABLE: Final = 5
ACCEPTED: Final = 6
REJECTED: Final = 8


class StoreError(Exception):
    """The state file cannot be used (wrong format, newer schema than this program)."""


class NewMessage(NamedTuple):
    """A message to keep until it is delivered or expires (SPEC GW-06).

    A NamedTuple rather than an attrs class: one is made per submit_sm on the gateway's
    hottest path, and its tuple is the row inserted as it is.
    """

    kind: str = "p2p"  # 'p2p' | 'reply' | 'receipt' | 'ussd' | 'mo' | 'ussd_mo'
    origin_system_id: str = ""
    service_type: str = ""
    source_addr_ton: int = 1
    source_addr_npi: int = 1
    source_addr: str = ""
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    short_message: bytes = b""
    tlvs: bytes = b""
    submitted_at: int = 0
    expires_at: int = 0
    state: int = ENROUTE
    receipt_for: int | None = None


class StoredMessage(NamedTuple):
    """A message as the queue holds it: its id, the fields of :class:`NewMessage`, the end."""

    id: int
    kind: str
    origin_system_id: str
    service_type: str
    source_addr_ton: int
    source_addr_npi: int
    source_addr: str
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: str
    esm_class: int
    protocol_id: int
    priority_flag: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    tlvs: bytes
    submitted_at: int
    expires_at: int
    state: int
    receipt_for: int | None
    done_at: int | None = None
    error_code: int = 0

    @classmethod
    def of(cls, message_id: int, message: NewMessage) -> StoredMessage:
        return cls(message_id, *message)


_FIELDS: Final = StoredMessage._fields
_COLUMNS: Final = ", ".join(_FIELDS)
_INSERT: Final = (
    f"INSERT INTO messages ({', '.join(('id', *NewMessage._fields))})"
    f" VALUES ({', '.join('?' * (len(NewMessage._fields) + 1))})"
)


class MessageQueue(Protocol):
    """What the gateway needs of a store: a durable queue of messages (SPEC GW-06)."""

    def add_messages(self, messages: Sequence[NewMessage]) -> list[int]: ...

    def add_message(self, message: NewMessage) -> int: ...

    def set_states(self, changes: Iterable[tuple[int, int, int, int]]) -> None: ...

    def enroute(self) -> list[StoredMessage]: ...

    def get_message(self, message_id: int) -> StoredMessage | None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


class SqliteStore:
    """The SQLite implementation of the store (the default, and the one tests use)."""

    def __init__(self, path: str = ":memory:", *, durability: str = "normal") -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            # Checkpoint the WAL every ~16 MB rather than every 4 MB: fewer stalls under load.
            self._db.execute("PRAGMA wal_autocheckpoint=4000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a ussdsim state file ({exc})") from exc
        row = self._db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
        self._next_id: int = row[0] + 1
        self._in_tx = False
        #: rows added but not yet written (see add_messages)
        self._pending: list[tuple[object, ...]] = []
        #: called after every rollback (the World drops its read cache, services/world.py)
        self._rollback_hooks: list[Callable[[], None]] = []

    # -- schema -------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this ussdsim "
                f"({len(MIGRATIONS)})"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            # executescript commits first; the BEGIN inside makes each migration atomic.
            self._db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")

    # -- transactions -------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def begin(self) -> None:
        """Open a transaction unless one is open; changes stay pending until commit()."""
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        self._write_pending()
        if self._in_tx:
            self._db.execute("COMMIT")
            self._in_tx = False

    def rollback(self) -> None:
        self._pending = []
        if self._in_tx:
            self._db.execute("ROLLBACK")
            self._in_tx = False
        for hook in self._rollback_hooks:
            hook()

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` after every rollback: a cache of the domain tables is stale then."""
        self._rollback_hooks.append(hook)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction that commits on success and rolls back on any exception.

        Nested use joins the outer transaction (the outer one commits).
        """
        if self._in_tx:
            yield self._db
            return
        self.begin()
        try:
            yield self._db
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def close(self) -> None:
        self.commit()
        self._db.close()

    # -- the message queue (SPEC GW-06, GW-07) -----------------------------------------

    def add_messages(self, messages: Sequence[NewMessage]) -> list[int]:
        """Queue messages for the next commit; returns their ids at once.

        The rows are written by :meth:`commit` (or any read of the queue) in one
        ``executemany``, inside the same transaction as whatever else changed.
        """
        first = self._next_id
        self._next_id = first + len(messages)
        self._pending.extend((first + i, *m) for i, m in enumerate(messages))
        return list(range(first, first + len(messages)))

    def add_message(self, message: NewMessage) -> int:
        """:meth:`add_messages` for one message (the submit_sm path)."""
        message_id = self._next_id
        self._next_id = message_id + 1
        self._pending.append((message_id, *message))
        return message_id

    def _write_pending(self) -> None:
        if self._pending:
            self.begin()
            self._db.executemany(_INSERT, self._pending)
            self._pending = []

    def set_states(self, changes: Iterable[tuple[int, int, int, int]]) -> None:
        """Record final states: ``(message_id, state, done_at, error_code)`` each."""
        self._write_pending()
        self.begin()
        self._db.executemany(
            "UPDATE messages SET state = ?, done_at = ?, error_code = ? WHERE id = ?",
            [(state, done_at, error, mid) for mid, state, done_at, error in changes],
        )

    def enroute(self) -> list[StoredMessage]:
        """Every message still owed to somebody, oldest first."""
        self._write_pending()
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE state = {ENROUTE} ORDER BY id"
        ).fetchall()
        return [StoredMessage._make(row) for row in rows]

    def get_message(self, message_id: int) -> StoredMessage | None:
        self._write_pending()
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return None if row is None else StoredMessage._make(row)

    def messages_for(self, msisdn: str, *, limit: int = 100) -> list[StoredMessage]:
        """The newest messages from or to an MSISDN (the message log of the control API)."""
        self._write_pending()
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE source_addr = ? OR destination_addr = ?"
            " ORDER BY id DESC LIMIT ?",
            (msisdn, msisdn, limit),
        ).fetchall()
        return [StoredMessage._make(row) for row in rows]

    def messages_after(
        self, after: int, *, msisdn: str | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        """The messages with an id above ``after``, oldest first: a cursor over the whole log
        (only those from or to ``msisdn`` when given).  Ids are handed out in order and every
        pending row is written before the read, so nothing appears later below a cursor."""
        self._write_pending()
        sql = f"SELECT {_COLUMNS} FROM messages WHERE id > ?"
        args: tuple[object, ...] = (after,)
        if msisdn is not None:
            sql = (
                f"SELECT {_COLUMNS} FROM messages"
                " WHERE id > ? AND (source_addr = ? OR destination_addr = ?)"
            )
            args = (after, msisdn, msisdn)
        rows = self._db.execute(f"{sql} ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [StoredMessage._make(row) for row in rows]

    def last_message_id(self) -> int:
        """The newest id in the message log (0 when it is empty): where a cursor starts."""
        self._write_pending()
        return int(self._db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0])
