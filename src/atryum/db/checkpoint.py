"""SQLite: WAL checkpoints in a background thread, not in the commit of a gateway decision.

SQLite copies the WAL back into the database file (a checkpoint, with an fsync) inside the commit
that takes the WAL past `wal_autocheckpoint` pages, 1000 by default. A tool call commits three
times, so at 200 calls/s that was a checkpoint several times a second, each 3 to 10 ms on this
machine's disk, inside one decision's commit, with every decision queued behind it waiting too.
Here a thread checkpoints every CHECKPOINT_EVERY seconds in PASSIVE mode, which never waits for
or blocks a reader or writer. The commits' own threshold is BACKSTOP_PAGES (see `engine`): a
process without this thread (a CLI command), or one whose thread falls behind, still checkpoints,
and by then the thread has normally copied most of the WAL already.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("atryum.db")

CHECKPOINT_EVERY = 0.1
BACKSTOP_PAGES = 4000


class Checkpointer:
    """A daemon thread checkpointing the WAL of the SQLite file at `path` until `stop`."""

    def __init__(self, path: str, every: float = CHECKPOINT_EVERY) -> None:
        self._path = path
        self._every = every
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        failing = ""
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            while not self._stopping.wait(self._every):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the commits' backstop still checkpoints
                    if str(exc) != failing:
                        log.warning("background WAL checkpoint failed error=%s", exc)
                    failing = str(exc)
                else:
                    failing = ""
        finally:
            conn.close()
