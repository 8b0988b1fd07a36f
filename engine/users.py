"""People: users, their groups, logins, browser sessions and API tokens.

Every user belongs to exactly one tenant. What a user may see follows from the tenant and the role:
caseworkers and designers work the tasks of their own groups, team leads every task of their tenant,
admins every tenant. Passwords are argon2 hashes; session ids and API tokens are random and only their
SHA-256 is stored, so a copy of the database lets nobody log in.

Functions take the Runtime and write only inside their own ``rt.db.begin()`` block.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update

from .errors import NotFound, OzgflowError
from .schema import ApiToken, Membership, User, UserGroup, WebSession

USERS, GROUPS, MEMBERS = User.__table__, UserGroup.__table__, Membership.__table__
SESSIONS, TOKENS = WebSession.__table__, ApiToken.__table__
ROLES = ("caseworker", "teamlead", "designer", "admin")

# Failed logins: from the 3rd failure on each try waits (2 s, 4 s, 8 s …); from the 5th the account is
# locked for 15 minutes. The counter resets on a successful login.
SLOW_AFTER = 3
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verified when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class UserError(OzgflowError):
    """A user cannot be created or changed as asked (unknown role, taken name, empty password)."""


class LoginRefused(OzgflowError):
    """Wrong name or password, or the account is locked for a while (``locked_until``)."""

    def __init__(self, message, locked_until=None):
        super().__init__(message)
        self.locked_until = locked_until


@dataclass(frozen=True)
class Person:
    """The logged-in user as the web and the inbox see them."""

    id: int
    name: str
    tenant: str
    role: str
    groups: tuple

    @property
    def is_admin(self):
        return self.role == "admin"

    @property
    def is_teamlead(self):
        """Team leads (and admins) see every task of their tenant and may assign tasks."""
        return self.role in ("teamlead", "admin")

    def as_dict(self):
        return {"id": self.id, "name": self.name, "tenant": self.tenant, "role": self.role,
                "groups": list(self.groups)}


def _digest(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- creating -------------------------------------------------------------------------------------------


def add_user(rt, name, tenant, role, password, groups=()):
    """Create a user of ``tenant`` with ``role`` and ``password`` in ``groups`` (unknown groups of the
    tenant are created). Returns the Person."""
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise UserError("a user name is 1 to 255 characters")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    if not password:
        raise UserError("the password is empty")
    rt.tenants.get(tenant)
    groups = sorted({g.strip() for g in groups if g and g.strip()})
    password_hash = _hasher.hash(password)
    with rt.db.begin() as conn:
        if conn.execute(select(USERS.c.id).where(USERS.c.name == name)).first() is not None:
            raise UserError(f"a user named {name!r} exists already")
        user_id = conn.execute(insert(USERS).values(
            tenant=tenant, name=name, role=role, password_hash=password_hash, failed_logins=0,
            locked_until=None, active=True, created_at=rt.clock()).returning(USERS.c.id)).scalar_one()
        for group_id in _ensure_groups(conn, tenant, groups):
            conn.execute(insert(MEMBERS).values(user_id=user_id, group_id=group_id))
    return Person(user_id, name, tenant, role, tuple(groups))


def _ensure_groups(conn, tenant, names):
    ids = []
    for name in names:
        gid = conn.execute(select(GROUPS.c.id).where(GROUPS.c.tenant == tenant, GROUPS.c.name == name)).scalar()
        if gid is None:
            gid = conn.execute(insert(GROUPS).values(tenant=tenant, name=name).returning(GROUPS.c.id)).scalar_one()
        ids.append(gid)
    return ids


# --- reading --------------------------------------------------------------------------------------------


def _person(conn, row):
    groups = conn.execute(select(GROUPS.c.name).join(MEMBERS, MEMBERS.c.group_id == GROUPS.c.id)
                          .where(MEMBERS.c.user_id == row["id"]).order_by(GROUPS.c.name)).scalars().all()
    return Person(row["id"], row["name"], row["tenant"], row["role"], tuple(groups))


def get_user(rt, user_id=None, name=None):
    """The Person with this id or name; NotFound if there is none (or it is deactivated)."""
    q = select(USERS).where(USERS.c.active.is_(True))
    q = q.where(USERS.c.id == int(user_id)) if user_id is not None else q.where(USERS.c.name == name)
    with rt.reader.connect() as conn:
        row = conn.execute(q).mappings().first()
        if row is None:
            raise NotFound(f"no user {name if user_id is None else user_id}")
        return _person(conn, row)


def users_of_tenant(rt, tenant):
    """Names of the active users of a tenant (whom a team lead can assign a task to)."""
    with rt.reader.connect() as conn:
        return conn.execute(select(USERS.c.name).where(USERS.c.tenant == tenant, USERS.c.active.is_(True))
                            .order_by(USERS.c.name)).scalars().all()


# --- logging in -----------------------------------------------------------------------------------------


def authenticate(rt, name, password):
    """The Person for a correct name and password. Raises LoginRefused for a wrong one, and while the
    account is slowed down or locked after repeated failures (then even the right password is refused)."""
    now = rt.clock()
    with rt.reader.connect() as conn:
        row = conn.execute(select(USERS).where(USERS.c.name == (name or "").strip(),
                                               USERS.c.active.is_(True))).mappings().first()
    if row is None:
        _verify(_DUMMY_HASH, password or "")
        raise LoginRefused("Benutzername oder Passwort ist falsch.")
    if row["locked_until"] is not None and row["locked_until"] > now:
        raise LoginRefused("Zu viele Fehlversuche: Anmeldung vorübergehend gesperrt. "
                           "Bitte versuchen Sie es später erneut.", row["locked_until"])
    if not _verify(row["password_hash"], password or ""):
        failures = row["failed_logins"] + 1
        locked = _lock_after(failures, now)
        with rt.db.begin() as conn:
            conn.execute(update(USERS).where(USERS.c.id == row["id"])
                         .values(failed_logins=USERS.c.failed_logins + 1, locked_until=locked))
        raise LoginRefused("Benutzername oder Passwort ist falsch.", locked)
    with rt.db.begin() as conn:
        if row["failed_logins"] or row["locked_until"] or _hasher.check_needs_rehash(row["password_hash"]):
            conn.execute(update(USERS).where(USERS.c.id == row["id"]).values(
                failed_logins=0, locked_until=None, password_hash=_rehash(row["password_hash"], password)))
        return _person(conn, row)


def _verify(password_hash, password):
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _rehash(password_hash, password):
    return _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else password_hash


def _lock_after(failures, now):
    if failures >= LOCK_AFTER:
        return now + LOCK_FOR
    if failures >= SLOW_AFTER:
        return now + timedelta(seconds=2 ** (failures - SLOW_AFTER + 1))
    return None


# --- browser sessions -----------------------------------------------------------------------------------


def open_session(rt, person):
    """Start a browser session for ``person``; returns the random session id for the cookie."""
    sid = secrets.token_urlsafe(32)
    now = rt.clock()
    with rt.db.begin() as conn:
        conn.execute(insert(SESSIONS).values(id_hash=_digest(sid), user_id=person.id, created_at=now,
                                             last_seen_at=now))
    return sid


def session_person(rt, sid, idle, max_age):
    """The Person of a live session, or None when it is unknown, ended, idle longer than ``idle`` or
    older than ``max_age`` (both timedeltas). Expired sessions are deleted on the way."""
    if not sid:
        return None
    now = rt.clock()
    key = _digest(sid)
    with rt.reader.connect() as conn:
        s = conn.execute(select(SESSIONS).where(SESSIONS.c.id_hash == key)).mappings().first()
    if s is None:
        return None
    if now - s["last_seen_at"] > idle or now - s["created_at"] > max_age:
        close_session(rt, sid)
        return None
    if now - s["last_seen_at"] > timedelta(minutes=1):  # at most one write a minute per session
        with rt.db.begin() as conn:
            conn.execute(update(SESSIONS).where(SESSIONS.c.id_hash == key).values(last_seen_at=now))
    try:
        return get_user(rt, s["user_id"])
    except NotFound:
        return None


def close_session(rt, sid):
    """End a browser session (logout)."""
    if sid:
        with rt.db.begin() as conn:
            conn.execute(delete(SESSIONS).where(SESSIONS.c.id_hash == _digest(sid)))


# --- API tokens -----------------------------------------------------------------------------------------


def create_token(rt, name):
    """A new API token for the user ``name``. The token is shown once; only its hash is stored."""
    person = get_user(rt, name=name)
    token = "ozg_" + secrets.token_urlsafe(32)
    with rt.db.begin() as conn:
        conn.execute(insert(TOKENS).values(user_id=person.id, token_hash=_digest(token), created_at=rt.clock()))
    return token


def token_person(rt, token):
    """The Person a bearer token belongs to, or None."""
    if not token:
        return None
    with rt.reader.connect() as conn:
        user_id = conn.execute(select(TOKENS.c.user_id).where(TOKENS.c.token_hash == _digest(token))).scalar()
    if user_id is None:
        return None
    try:
        return get_user(rt, user_id)
    except NotFound:
        return None
