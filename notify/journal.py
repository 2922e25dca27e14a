"""notify's own SQLite file (state/notify/notify.sqlite): every delivery with its outcome, the console's
inbox, the rate windows and the incident watcher's position.

One file shared by every process that notifies (the notify service, `govctl notify`, a caller of
`notify.send_event`): de-duplication and rate limits are decided in one write transaction here, so
two processes never both send the eleventh message of a window.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from core import paths

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries(
  id INTEGER PRIMARY KEY, created REAL NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
  event_key TEXT NOT NULL, route TEXT, channel TEXT NOT NULL, recipients TEXT NOT NULL, subject TEXT NOT NULL,
  body TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, attempts INTEGER NOT NULL DEFAULT 0,
  next_try REAL, release_at REAL, digest_id INTEGER, error TEXT, sent REAL, event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_try);
CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries(channel, event_key, created);
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries(created);
CREATE TABLE IF NOT EXISTS windows(channel TEXT PRIMARY KEY, start REAL NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inbox(
  id INTEGER PRIMARY KEY, created REAL NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL, title TEXT NOT NULL,
  subject TEXT NOT NULL, body TEXT NOT NULL, link TEXT, roles TEXT NOT NULL, read_by TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS inbox_created ON inbox(created);
CREATE TABLE IF NOT EXISTS watch(name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_DELIVERY = ("id", "created", "kind", "severity", "event_key", "route", "channel", "recipients", "subject", "status",
             "reason", "attempts", "next_try", "release_at", "digest_id", "error", "sent")


def journal_path() -> Path:
    return Path(os.environ.get("GOVCTL_NOTIFY_JOURNAL", paths.STATE / "notify" / "notify.sqlite"))


class Journal:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else journal_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def writing(self):
        """One write transaction, taken before reading what it decides on (BEGIN IMMEDIATE)."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # -------------------------------------------------------------- deliveries
    def add(self, db, row: dict) -> int:
        columns = [c for c in row if c != "id"]
        values = [json.dumps(row[c], ensure_ascii=False) if c == "event" else row[c] for c in columns]
        return db.execute(f"INSERT INTO deliveries({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                          values).lastrowid

    def claim_due(self, now: float, limit: int = 50) -> list[dict]:
        """Pending deliveries whose time has come, marked `sending` so no other process takes them."""
        with self.writing() as db:
            rows = db.execute("SELECT id, channel, recipients, subject, body, attempts, kind, severity, event"
                              " FROM deliveries WHERE status='pending' AND next_try<=? ORDER BY id LIMIT ?",
                              (now, limit)).fetchall()
            if rows:
                db.execute(f"UPDATE deliveries SET status='sending' WHERE id IN ({','.join('?' * len(rows))})",
                           [r[0] for r in rows])
        return [{"id": r[0], "channel": r[1], "recipients": r[2], "subject": r[3], "body": r[4], "attempts": r[5],
                 "kind": r[6], "severity": r[7], "event": json.loads(r[8])} for r in rows]

    def finish(self, delivery_id: int, *, sent: float | None = None, error: str | None = None,
               retry_at: float | None = None) -> None:
        with self.writing() as db:
            if sent is not None:
                db.execute("UPDATE deliveries SET status='sent', sent=?, attempts=attempts+1, error=NULL WHERE id=?",
                           (sent, delivery_id))
            elif retry_at is not None:
                db.execute("UPDATE deliveries SET status='pending', next_try=?, attempts=attempts+1, error=? WHERE id=?",
                           (retry_at, error, delivery_id))
            else:
                db.execute("UPDATE deliveries SET status='failed', attempts=attempts+1, error=? WHERE id=?",
                           (error, delivery_id))

    def recover_stuck(self) -> int:
        """Deliveries left `sending` by a process that died: pending again (a message may go twice, none is lost)."""
        with self.writing() as db:
            return db.execute("UPDATE deliveries SET status='pending' WHERE status='sending'").rowcount

    def log(self, limit: int = 100, channel: str | None = None) -> list[dict]:
        sql = f"SELECT {', '.join(_DELIVERY)} FROM deliveries"
        args: list = []
        if channel:
            sql += " WHERE channel=?"
            args.append(channel)
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [dict(zip(_DELIVERY, r)) for r in rows]

    def get(self, delivery_id: int) -> dict | None:
        with self.lock:
            row = self.db.execute(f"SELECT {', '.join(_DELIVERY)} FROM deliveries WHERE id=?", (delivery_id,)).fetchone()
        return dict(zip(_DELIVERY, row)) if row else None

    def prune(self, before: float) -> int:
        with self.writing() as db:
            db.execute("DELETE FROM inbox WHERE created<?", (before,))
            return db.execute("DELETE FROM deliveries WHERE created<? AND status NOT IN ('pending','sending','held')",
                              (before,)).rowcount

    # -------------------------------------------------------------- the console's inbox
    def add_inbox(self, db, created: float, kind: str, severity: str, title: str, subject: str, body: str,
                  link: str | None, roles: list[str]) -> int:
        return db.execute("INSERT INTO inbox(created, kind, severity, title, subject, body, link, roles)"
                          " VALUES (?,?,?,?,?,?,?,?)",
                          (created, kind, severity, title, subject, body, link, json.dumps(sorted(roles)))).lastrowid

    def inbox(self, user: str, role: str, limit: int = 50) -> dict:
        """The notifications for `role`, newest first, each with `read` for `user`, and the unread count."""
        pattern = f'%"{role}"%'
        with self.lock:
            rows = self.db.execute("SELECT id, created, kind, severity, title, subject, body, link, read_by FROM inbox"
                                   " WHERE roles LIKE ? ORDER BY id DESC LIMIT ?", (pattern, limit)).fetchall()
            unread = self.db.execute("SELECT count(*) FROM inbox WHERE roles LIKE ? AND read_by NOT LIKE ?",
                                     (pattern, f'%"{user}"%')).fetchone()[0]
        items = [{"id": r[0], "created": r[1], "kind": r[2], "severity": r[3], "title": r[4], "subject": r[5],
                  "body": r[6], "link": r[7], "read": user in json.loads(r[8])} for r in rows]
        return {"unread": unread, "items": items}

    def mark_read(self, user: str, role: str, ids: list[int] | None) -> int:
        """Mark the given notifications (all of the role's when None) read for `user`; how many changed."""
        changed = 0
        with self.writing() as db:
            sql = "SELECT id, read_by FROM inbox WHERE roles LIKE ?"
            args: list = [f'%"{role}"%']
            if ids is not None:
                sql += f" AND id IN ({','.join('?' * len(ids))})"
                args += ids
            for row_id, read_by in db.execute(sql, args).fetchall():
                readers = json.loads(read_by)
                if user not in readers:
                    db.execute("UPDATE inbox SET read_by=? WHERE id=?", (json.dumps(readers + [user]), row_id))
                    changed += 1
        return changed

    # -------------------------------------------------------------- watcher position
    def watch_state(self, name: str) -> dict | None:
        with self.lock:
            row = self.db.execute("SELECT value FROM watch WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_watch_state(self, name: str, value: dict) -> None:
        with self.writing() as db:
            db.execute("INSERT INTO watch(name, value) VALUES (?,?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                       (name, json.dumps(value)))
