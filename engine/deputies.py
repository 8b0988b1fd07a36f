"""Vertretung: a person records an absence and names a deputy of their tenant. While the absence lasts the
deputy sees the tasks assigned to the absent person in their inbox and may work them; when the deputy
takes such a task over, the case's history says on whose behalf (``engine.inbox``).

A person records their own absences; team leads (and admins) also those of the people of their tenant.
"""

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, insert, select

from .errors import NotFound, OzgflowError
from .schema import Absence, User

ABSENCES, USERS = Absence.__table__, User.__table__
MAX_LENGTH = timedelta(days=366)


class AbsenceError(OzgflowError):
    """An absence cannot be recorded as asked (no deputy, oneself as deputy, end before start …)."""


def add_absence(rt, person, deputy, starts_at, ends_at, absent=None):
    """Record that ``absent`` (a user name; default: ``person`` themself) is away from ``starts_at`` to
    ``ends_at`` (aware datetimes) with ``deputy`` (a user name of the same tenant). Returns the id."""
    from .users import get_user

    absent = absent or person.name
    if absent != person.name and not person.is_teamlead:
        raise AbsenceError("Nur Teamleitungen können Abwesenheiten für andere eintragen.")
    try:
        who = get_user(rt, name=absent)
        stand_in = get_user(rt, name=deputy)
    except NotFound:
        raise AbsenceError("Diese Person gibt es in Ihrer Kommune nicht.") from None
    if who.tenant != person.tenant and not person.is_admin or stand_in.tenant != who.tenant:
        raise AbsenceError("Diese Person gibt es in Ihrer Kommune nicht.")
    if stand_in.id == who.id:
        raise AbsenceError("Die Vertretung muss eine andere Person sein.")
    if not isinstance(starts_at, datetime) or not isinstance(ends_at, datetime) or ends_at <= starts_at:
        raise AbsenceError("Das Ende der Abwesenheit muss nach ihrem Beginn liegen.")
    if ends_at - starts_at > MAX_LENGTH:
        raise AbsenceError("Eine Abwesenheit dauert höchstens ein Jahr.")
    with rt.db.begin() as conn:
        return conn.execute(insert(ABSENCES).values(
            tenant=who.tenant, user_id=who.id, deputy_id=stand_in.id, starts_at=starts_at, ends_at=ends_at,
            created_at=rt.clock(), created_by=person.name).returning(ABSENCES.c.id)).scalar_one()


def list_absences(rt, person):
    """Absences that concern ``person`` and have not ended: their own, those they stand in for and — for
    team leads — those of their tenant. Dicts with id, absent, deputy, starts_at, ends_at, current."""
    now = rt.clock()
    absent, deputy = USERS.alias("absent"), USERS.alias("deputy")
    q = (select(ABSENCES.c.id, absent.c.name.label("absent"), deputy.c.name.label("deputy"), ABSENCES.c.starts_at,
                ABSENCES.c.ends_at, ABSENCES.c.created_by)
         .join(absent, absent.c.id == ABSENCES.c.user_id).join(deputy, deputy.c.id == ABSENCES.c.deputy_id)
         .where(ABSENCES.c.ends_at > now).order_by(ABSENCES.c.starts_at, ABSENCES.c.id))
    if person.is_teamlead:
        q = q.where(ABSENCES.c.tenant == person.tenant)
    else:
        q = q.where((ABSENCES.c.user_id == person.id) | (ABSENCES.c.deputy_id == person.id))
    with rt.reader.connect() as conn:
        rows = conn.execute(q).mappings().all()
    # ends_at is exclusive (the start of the day after); people read the last day of the absence
    return [{**r, "current": r["starts_at"] <= now, "last_day": r["ends_at"] - timedelta(microseconds=1)}
            for r in rows]


def remove_absence(rt, person, absence_id):
    """End (delete) an absence: its absent person, or a team lead of its tenant. NotFound otherwise."""
    with rt.db.begin() as conn:
        row = conn.execute(select(ABSENCES).where(ABSENCES.c.id == int(absence_id))).mappings().first()
        mine = row is not None and (row["user_id"] == person.id or
                                    (person.is_teamlead and row["tenant"] == person.tenant))
        if not mine:
            raise NotFound(f"no absence {absence_id}")
        conn.execute(delete(ABSENCES).where(ABSENCES.c.id == row["id"]))


def represented(conn, person, now):
    """Names of the people ``person`` stands in for right now (a tuple, usually empty)."""
    rows = conn.execute(select(USERS.c.name).join(ABSENCES, ABSENCES.c.user_id == USERS.c.id)
                        .where(ABSENCES.c.deputy_id == person.id,
                               and_(ABSENCES.c.starts_at <= now, ABSENCES.c.ends_at > now))
                        .order_by(USERS.c.name)).scalars().all()
    return tuple(dict.fromkeys(rows))
