"""The tables of the engine. One row per case holds its workflow state without the spec; specs are stored
once per process version. Tasks are their own indexed table, so an inbox never loads a workflow. The audit
log is append-only and hash-chained (see ``engine.audit``).

The classes are typed SQLAlchemy models; the hot paths in ``engine.cases`` use their tables with Core
statements, which costs a fraction of ORM unit-of-work bookkeeping.
"""

from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the engine stores UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ProcessVersion(Base):
    """One deployed version of one executable (or view-only) BPMN process."""

    __tablename__ = "process_version"
    __table_args__ = (UniqueConstraint("process_id", "version", name="uq_process_version_process_id_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(255))
    dialect: Mapped[str] = mapped_column(String(16))  # "spiff" or "camunda": which serializer config
    executable: Mapped[bool] = mapped_column(Boolean, default=True)
    content_hash: Mapped[str] = mapped_column(String(64))  # over every file of the bundle
    spec: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(JSON of spec + subprocess specs)
    meta: Mapped[str] = mapped_column(Text)  # JSON: task metadata, forms, element lines
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(255))


class ModelFile(Base):
    """The files a version was deployed from (BPMN, DMN, forms), kept verbatim with their hashes."""

    __tablename__ = "model_file"
    __table_args__ = (UniqueConstraint("version_id", "path", name="uq_model_file_version_id_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Deployment(Base):
    """Who deployed which files when, and which versions that made (also when nothing was new)."""

    __tablename__ = "deployment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(255))
    files: Mapped[str] = mapped_column(Text)  # JSON list of {"path", "sha256"}
    versions: Mapped[str] = mapped_column(Text)  # JSON list of {"process_id", "version", "new"}


class Case(Base):
    __tablename__ = "case"
    __table_args__ = (
        UniqueConstraint("tenant", "aktenzeichen", name="uq_case_tenant_aktenzeichen"),
        Index("ix_case_tenant_state", "tenant", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    aktenzeichen: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # running, waiting, completed, error
    workflow: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(JSON of the workflow without spec)
    serializer_version: Mapped[str] = mapped_column(String(16))
    lock_version: Mapped[int] = mapped_column(Integer)  # optimistic lock: +1 on every write
    submission_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    audit_seq: Mapped[int] = mapped_column(Integer)  # seq of the newest audit event
    audit_hash: Mapped[str] = mapped_column(String(64))  # its hash: the head of the chain


class Task(Base):
    """An open (or finished) user task: what the inbox reads."""

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_tenant_state_due", "tenant", "state", "due_at"),
        Index("ix_task_assignee_state", "assignee", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # SpiffWorkflow's task id
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(255))
    element_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(512))
    assignee: Mapped[str | None] = mapped_column(String(255))
    candidate_users: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))  # open, completed, cancelled


class TaskGroup(Base):
    """Candidate groups of a task, one row each, so "tasks of my groups" is an index lookup."""

    __tablename__ = "task_group"
    __table_args__ = (Index("ix_task_group_group_name", "group_name", "task_id"),)

    task_id: Mapped[str] = mapped_column(ForeignKey("task.id"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(255), primary_key=True)


class AuditEvent(Base):
    """Append-only history; each entry hashes all its fields and the previous entry's hash."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_audit_event_case_id_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(32))  # ISO-8601 UTC text, exactly as hashed
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    element_id: Mapped[str | None] = mapped_column(String(255))
    old: Mapped[str | None] = mapped_column(Text)  # JSON
    new: Mapped[str | None] = mapped_column(Text)  # JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Counter(Base):
    """Sequence numbers for Aktenzeichen, per tenant and scope (the year, when the pattern uses it)."""

    __tablename__ = "counter"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


def utcnow():
    return datetime.now(UTC)


# --- people: users, groups, sessions, tokens (issue 4) ------------------------------------------------


class User(Base):
    """A person who logs in. Belongs to exactly one tenant; ``role`` is caseworker, teamlead, designer or
    admin. The password is kept as an argon2 hash; failed logins are counted and lock the account a while."""

    __tablename__ = "user_account"  # "user" is a reserved word in PostgreSQL

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserGroup(Base):
    """A group of a tenant; tasks name their candidate groups (BPMN lanes, candidateGroups) by ``name``."""

    __tablename__ = "user_group"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_user_group_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))


class Membership(Base):
    __tablename__ = "membership"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("user_group.id"), primary_key=True)


class WebSession(Base):
    """A browser login. The cookie carries a random id; only its SHA-256 is stored, so logout and expiry
    are decided here on the server, not by the cookie."""

    __tablename__ = "web_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token for /api/v1. Only the SHA-256 of the token is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TaskDraft(Base):
    """What a user typed into a task form and saved without completing ("Entwurf speichern")."""

    __tablename__ = "task_draft"

    task_id: Mapped[str] = mapped_column(ForeignKey("task.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    data: Mapped[str] = mapped_column(Text)  # JSON object, as typed (text values)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SavedFilter(Base):
    """An inbox filter a user saved under a name (the query string of the inbox)."""

    __tablename__ = "saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_saved_filter_user_id_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    name: Mapped[str] = mapped_column(String(255))
    query: Mapped[str] = mapped_column(Text)


class Comment(Base):
    """A caseworker's note on a case; every comment is also an entry of the case's history."""

    __tablename__ = "case_comment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    author: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Submission(Base):
    """An application received from the OZG mailbox (FIT-Connect), kept whatever became of it.

    States: ``received`` (stored, not yet answered), ``accepted`` (a case was started), ``rejected``
    (refused with a FIT-Connect problem; quarantined with its raw encrypted parts)."""

    __tablename__ = "submission"
    __table_args__ = (Index("ix_submission_tenant_state", "tenant", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[str] = mapped_column(String(64), unique=True)  # FIT-Connect submissionId
    fitconnect_case_id: Mapped[str | None] = mapped_column(String(64), index=True)  # FIT-Connect caseId
    tenant: Mapped[str] = mapped_column(String(64))
    destination_id: Mapped[str] = mapped_column(String(64))
    service: Mapped[str | None] = mapped_column(String(64))  # LeiKa key
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    problem_type: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # accept/reject event confirmed sent
    metadata_json: Mapped[str | None] = mapped_column(Text)  # decrypted metadata
    data_json: Mapped[str | None] = mapped_column(Text)  # decrypted Fachdaten
    raw: Mapped[str] = mapped_column(Text)  # JSON: the encrypted parts as received (JWE compact), untouched
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)


class Document(Base):
    """A file of a case (the citizen's attachments, later letters), stored content-addressed on disk."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_pk: Mapped[int | None] = mapped_column(ForeignKey("submission.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    attachment_id: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(512))
    mime_type: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))  # form, attachment, report, letter
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    sha512: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- background work: jobs and messages (issue 5) ------------------------------------------------------


class Job(Base):
    """One piece of background work: a due timer, a service call, a message to deliver, a periodic run.

    Workers claim due jobs (``engine.jobs``); a claimed job is ``running`` until ``lease_until``, after which
    another worker may take it over. A failed job goes back to ``pending`` with a later ``due_at`` until
    ``max_attempts`` is reached, then becomes an ``incident`` for an operator to retry or cancel. Finished
    one-off jobs are deleted (the case's history keeps what happened); periodic jobs (``every_seconds``) are
    moved to their next due time."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_state_due_at", "state", "due_at"),
        Index("ix_job_state_lease_until", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    tenant: Mapped[str | None] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)  # one job per timer, per kind …
    payload: Mapped[str] = mapped_column(Text)  # JSON object
    state: Mapped[str] = mapped_column(String(16))  # pending, running, incident, cancelled
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(128))  # the worker holding the lease
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    backoff_seconds: Mapped[float] = mapped_column(Float)  # delay after the 1st failure; doubles after each
    every_seconds: Mapped[float | None] = mapped_column(Float)  # periodic jobs: the interval
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Message(Base):
    """A message from outside that could not be delivered at once: ``kept`` until the case waits for it
    (or ``expires_at``), ``dead`` when it matched no case or expired — the dead-letter list."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_state_name", "state", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    correlation: Mapped[str] = mapped_column(Text)  # JSON object, as received
    payload: Mapped[str] = mapped_column(Text)  # JSON object
    state: Mapped[str] = mapped_column(String(16))  # kept, delivered, dead
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    tenant: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # delivered or dead-lettered
    reason: Mapped[str | None] = mapped_column(Text)  # why it is dead


# --- the inbox: applicant search, deputies, reads of personal data (issue 4) ----------------------------

# The inbox's reads of the visible set: "is this task of the tenant, open, whose, due when" answered from
# the index alone for each task id a group or assignee lookup yields (engine.inbox).
Index("ix_task_inbox", Task.id, Task.tenant, Task.state, Task.assignee, Task.due_at, Task.created_at, Task.case_id,
      Task.process_id, Task.element_id)
# Team leads' "not assigned" count: a range of this index instead of every open task of the tenant.
Index("ix_task_tenant_state_assignee", Task.tenant, Task.state, Task.assignee)


class CaseApplicant(Base):
    """Who applied, as read from a case's data when it started (``engine.applicants``): shown in the inbox."""

    __tablename__ = "case_applicant"

    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))


class ApplicantWord(Base):
    """One searchable word of an applicant's name (lower case, without accents): the inbox's name search
    is a prefix range of this primary key."""

    __tablename__ = "applicant_word"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    word: Mapped[str] = mapped_column(String(255), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), primary_key=True)


class Absence(Base):
    """Vertretung: while ``user`` is away (``starts_at`` to ``ends_at``), ``deputy`` sees and works the tasks
    assigned to them; what the deputy does is recorded as done on their behalf (``engine.deputies``)."""

    __tablename__ = "absence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    deputy_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(255))


class DataRead(Base):
    """One read of personal data: who looked at which case (or document of it), when, and how (page or
    API). Append-only; admins read it (``engine.reads``)."""

    __tablename__ = "data_read"
    __table_args__ = (Index("ix_data_read_tenant_at", "tenant", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(255))
    tenant: Mapped[str] = mapped_column(String(64))  # the case's tenant
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    what: Mapped[str] = mapped_column(String(32))  # case, task, document
    via: Mapped[str] = mapped_column(String(16))  # web, api


# --- the electronic file: exports to the E-Akte and tombstones after retention (issue 7) -------------------


class EfileExport(Base):
    """One case handed to the E-Akte as an xdomea ``Abgabe.Abgabe.0401`` package (``engine.efile``).

    The hashes recorded here at export are what ``ozgflow verify`` checks the package, its documents and the
    received submission against later. The export counts as done only once ``confirmed_at`` is set (an
    ``Abgabe.ImportBestaetigen.0402`` from the E-Akte or an operator's confirmation)."""

    __tablename__ = "efile_export"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), unique=True)
    tenant: Mapped[str] = mapped_column(String(64))
    prozess_id: Mapped[str] = mapped_column(String(36), unique=True)  # xdomea ProzessID (UUID) of the message
    vorgang_id: Mapped[str] = mapped_column(String(36))  # xdomea ID of the Vorgang
    target: Mapped[str] = mapped_column(String(64))  # the connector, e.g. "outbox"
    location: Mapped[str] = mapped_column(Text)  # where the connector put the package (a path for the outbox)
    package_sha256: Mapped[str] = mapped_column(String(64))
    message_sha256: Mapped[str] = mapped_column(String(64))
    documents: Mapped[str] = mapped_column(Text)  # JSON list of {"document_id", "name", "sha256"} in the ZIP
    submission_sha256: Mapped[str | None] = mapped_column(String(64))  # over the submission row as received
    audit_seq: Mapped[int] = mapped_column(Integer)  # the history up to here is in the message
    audit_hash: Mapped[str] = mapped_column(String(64))
    retention_years: Mapped[int] = mapped_column(Integer)
    retention_until: Mapped[str] = mapped_column(String(10))  # ISO date: Aufbewahrungsende
    aussonderungsart: Mapped[str] = mapped_column(String(1))  # A (archivieren), B (bewerten), V (vernichten)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[str | None] = mapped_column(String(255))  # "efile" (a 0402 message) or an operator


class CaseTombstone(Base):
    """What is left of a case deleted after its retention period (``engine.retention``): ids, dates and the
    hash of the package the E-Akte confirmed. No personal data."""

    __tablename__ = "case_tombstone"
    __table_args__ = (Index("ix_case_tombstone_tenant_deleted_at", "tenant", "deleted_at"),)

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # no foreign key: the case is gone
    tenant: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(255))
    aktenzeichen: Mapped[str] = mapped_column(String(128))
    submission_id: Mapped[str | None] = mapped_column(String(64))
    prozess_id: Mapped[str] = mapped_column(String(36))
    package_sha256: Mapped[str] = mapped_column(String(64))
    audit_seq: Mapped[int] = mapped_column(Integer)  # the head of the deleted history
    audit_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retention_until: Mapped[str] = mapped_column(String(10))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_by: Mapped[str] = mapped_column(String(255))


class Dispatch(Base):
    """A letter of a case on its way to the citizen (``engine.dispatch``): by e-mail, or by post through a
    "Postversand" task (``dispatched_at`` stays empty while that task is open). Rows with channel "post" are
    the media breaks that remain."""

    __tablename__ = "dispatch"
    __table_args__ = (Index("ix_dispatch_tenant_channel", "tenant", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    process_id: Mapped[str] = mapped_column(String(255))
    element_id: Mapped[str] = mapped_column(String(255))  # the send task of the model
    letter: Mapped[str] = mapped_column(String(255))  # template name
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    channel: Mapped[str] = mapped_column(String(16))  # "email" | "post"
    reason: Mapped[str | None] = mapped_column(Text)  # why post, e.g. "replyChannel elster is not served"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deemed_delivered_on: Mapped[date | None] = mapped_column(Date)
