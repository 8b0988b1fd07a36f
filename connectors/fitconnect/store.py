"""The local FIT-Connect server's own SQLite store (``var/fitconnect-server.sqlite`` by default).

It stands in for the federal delivery service's database and shares nothing with the engine: its own
file, its own four tables, plain ``sqlite3``. Functions take an open connection; writes run inside
:func:`transaction` (``BEGIN IMMEDIATE``), so a check and the write that depends on it — "is this
submission still open?" then "record the accept event" — cannot interleave with another request.

A submission moves ``announced`` -> ``submitted`` -> ``accepted`` | ``rejected``. Parts are stored as the
sender uploaded them (compact JWE text): the delivery service cannot read them.
"""

import hashlib
import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS token (
    token_hash  TEXT PRIMARY KEY,          -- sha256 of the bearer token; the token itself is not kept
    client_id   TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS submission (
    submission_id       TEXT PRIMARY KEY,
    case_id             TEXT NOT NULL,
    destination_id      TEXT NOT NULL,
    sender              TEXT NOT NULL,     -- client id of the sender
    service             TEXT NOT NULL,     -- JSON {"name", "identifier"}
    announced           TEXT NOT NULL,     -- JSON list of attachment ids
    status              TEXT NOT NULL,     -- announced / submitted / accepted / rejected
    encrypted_metadata  TEXT,
    encrypted_data      TEXT,
    created_at          INTEGER NOT NULL,
    submitted_at        INTEGER
);
CREATE INDEX IF NOT EXISTS submission_pickup ON submission (destination_id, status, submitted_at);
CREATE INDEX IF NOT EXISTS submission_case ON submission (case_id);
CREATE TABLE IF NOT EXISTS attachment (
    submission_id  TEXT NOT NULL REFERENCES submission (submission_id),
    attachment_id  TEXT NOT NULL,
    content        TEXT NOT NULL,          -- compact JWE
    PRIMARY KEY (submission_id, attachment_id)
);
CREATE TABLE IF NOT EXISTS event (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id        TEXT NOT NULL,
    submission_id  TEXT NOT NULL,
    event          TEXT NOT NULL,          -- event URI, for queries; the signed token is the record
    token          TEXT NOT NULL,          -- compact SET as received or issued
    created_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS event_case ON event (case_id, seq);
"""


def connect(path):
    """An autocommit connection (transactions are explicit, see :func:`transaction`)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def create(path):
    """Create the file and its tables if missing (idempotent); WAL lets readers work beside a writer."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")  # stored in the file: set once
        conn.executescript(SCHEMA)
    finally:
        conn.close()


@contextmanager
def transaction(conn):
    """A write transaction that takes the database's write lock at its start."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def save_token(conn, token, client_id, expires_at, now):
    conn.execute("DELETE FROM token WHERE expires_at < ?", (now,))
    conn.execute("INSERT INTO token (token_hash, client_id, expires_at) VALUES (?, ?, ?)",
                 (_hash(token), client_id, expires_at))


def client_of_token(conn, token, now):
    """The client id a valid (unexpired) token was issued to, or None."""
    row = conn.execute("SELECT client_id FROM token WHERE token_hash = ? AND expires_at >= ?",
                       (_hash(token), now)).fetchone()
    return row["client_id"] if row else None


def create_submission(conn, *, submission_id, case_id, destination_id, sender, service, announced, now):
    conn.execute(
        "INSERT INTO submission (submission_id, case_id, destination_id, sender, service, announced, status,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, 'announced', ?)",
        (submission_id, case_id, destination_id, sender, json.dumps(service, ensure_ascii=False),
         json.dumps(announced), now))


def get_submission(conn, submission_id):
    """The submission as a dict (service and announced decoded), or None."""
    row = conn.execute("SELECT * FROM submission WHERE submission_id = ?", (submission_id,)).fetchone()
    if row is None:
        return None
    sub = dict(row)
    sub["service"] = json.loads(sub["service"])
    sub["announced"] = json.loads(sub["announced"])
    return sub


def submissions_of_case(conn, case_id):
    return [dict(r) for r in conn.execute(
        "SELECT submission_id, destination_id, sender, status FROM submission WHERE case_id = ?", (case_id,))]


def put_attachment(conn, submission_id, attachment_id, content):
    conn.execute("INSERT INTO attachment (submission_id, attachment_id, content) VALUES (?, ?, ?) "
                 "ON CONFLICT (submission_id, attachment_id) DO UPDATE SET content = excluded.content",
                 (submission_id, attachment_id, content))


def attachments(conn, submission_id):
    """attachment id -> compact JWE, for every uploaded attachment of the submission."""
    return {r["attachment_id"]: r["content"] for r in conn.execute(
        "SELECT attachment_id, content FROM attachment WHERE submission_id = ?", (submission_id,))}


def get_attachment(conn, submission_id, attachment_id):
    row = conn.execute("SELECT content FROM attachment WHERE submission_id = ? AND attachment_id = ?",
                       (submission_id, attachment_id)).fetchone()
    return row["content"] if row else None


def mark_submitted(conn, submission_id, encrypted_metadata, encrypted_data, now):
    conn.execute("UPDATE submission SET status = 'submitted', encrypted_metadata = ?, encrypted_data = ?,"
                 " submitted_at = ? WHERE submission_id = ?",
                 (encrypted_metadata, encrypted_data, now, submission_id))


def set_status(conn, submission_id, status):
    conn.execute("UPDATE submission SET status = ? WHERE submission_id = ?", (status, submission_id))


def pending(conn, destination_ids, offset, limit):
    """(page, total) of submitted, not yet accepted or rejected submissions of the destinations, oldest first."""
    marks = ", ".join("?" for _ in destination_ids) or "NULL"
    where = f"status = 'submitted' AND destination_id IN ({marks})"
    total = conn.execute(f"SELECT count(*) FROM submission WHERE {where}", destination_ids).fetchone()[0]
    rows = conn.execute(f"SELECT destination_id, submission_id, case_id FROM submission WHERE {where}"
                        " ORDER BY submitted_at, submission_id LIMIT ? OFFSET ?",
                        (*destination_ids, limit, offset)).fetchall()
    return [dict(r) for r in rows], total


def add_event(conn, case_id, submission_id, event, token, now):
    conn.execute("INSERT INTO event (case_id, submission_id, event, token, created_at) VALUES (?, ?, ?, ?, ?)",
                 (case_id, submission_id, event, token, now))


def has_event(conn, submission_id, events):
    marks = ", ".join("?" for _ in events)
    return conn.execute(f"SELECT 1 FROM event WHERE submission_id = ? AND event IN ({marks}) LIMIT 1",
                        (submission_id, *events)).fetchone() is not None


def event_log(conn, case_id):
    """The compact SETs of a case, in the order they were recorded."""
    return [r["token"] for r in conn.execute("SELECT token FROM event WHERE case_id = ? ORDER BY seq", (case_id,))]
