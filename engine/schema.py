"""The tables of the engine. One row per case holds its workflow state without the spec; specs are stored
once per process version. Tasks are their own indexed table, so an inbox never loads a workflow. The audit
log is append-only and hash-chained (see ``engine.audit``).

The classes are typed SQLAlchemy models; the hot paths in ``engine.cases`` use their tables with Core
statements, which costs a fraction of ORM unit-of-work bookkeeping.
"""

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
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
