"""Legal deadlines counted as the law counts them, handed to process models as absolute dates.

Periods follow §§187–193 BGB (through §31 VwVfG):

* §187(1): a period that starts with an event (the application arrived, the decision was sent) does not count
  the day of the event; §187(2): one that starts at the beginning of a day counts it (``from_event=False``).
* §188(1): a period in days ends when its last day ends. §188(2): one in weeks or months ends when the day of
  the last week or month ends that has the name or number of the event's day (for §187(2) periods: the day
  before). §188(3): if that month has no such day, its last day: 31 January + 1 month ends on the last day of
  February (28th, or the 29th in a leap year).
* §193 BGB / §31(3) VwVfG: a period whose last day is a Saturday, a Sunday or a public holiday at the
  authority's seat ends at the end of the next working day (``roll=True``). Holidays come from the
  ``holidays`` library (Germany, by default the state of Hesse, ``subdiv="HE"``).

The calendar is Europe/Berlin: "the end of a day" is midnight in Berlin, stored and handed over in UTC
(``end_of_day``). The patterns for the models:

* ``deemed_approval`` — §42a VwVfG: the application counts as approved three months after the documents were
  *complete* (an explicit, time-stamped event); ``extend_deemed_approval`` extends it once, with the reason
  recorded;
* ``delivery_fiction`` — §41(2) VwVfG / §122(2) AO: an electronic decision counts as delivered on the fourth
  day after dispatch; ``postbox_delivery`` — via the citizen's postbox, the day after retrieval, and not at all
  if it was not retrieved within ten days;
* ``reminder`` — a date some working days before a deadline.

Service tasks can ask for a deadline by name (``legal_deadline``, see ``as_service``); a timer event then waits
for the variable: ``<bpmn:timeDate>frist_ende</bpmn:timeDate>``.
"""

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from .errors import OzgflowError

BERLIN = ZoneInfo("Europe/Berlin")
DEFAULT_SUBDIV = "HE"  # Hesse: the five cities of the IKZ
DEEMED_APPROVAL_MONTHS = 3
DELIVERY_FICTION_DAYS = 4  # since 1 January 2025 (Postrechtsmodernisierungsgesetz); before: 3
POSTBOX_RETRIEVAL_DAYS = 10


class DeadlineError(OzgflowError):
    """A period or an extension that the rules do not allow (negative, twice extended, no reason …)."""


@lru_cache(maxsize=32)
def _holidays(subdiv, year):
    return holidays.country_holidays("DE", subdiv=subdiv, years=year)


def is_holiday(day, subdiv=DEFAULT_SUBDIV):
    """Whether ``day`` is a public holiday in Germany's ``subdiv`` (state code, e.g. "HE")."""
    return day in _holidays(subdiv, day.year)


def is_working_day(day, subdiv=DEFAULT_SUBDIV):
    """Monday to Friday and not a public holiday (§193 BGB counts Saturday as a non-working day)."""
    return day.weekday() < 5 and not is_holiday(day, subdiv)


def next_working_day(day, subdiv=DEFAULT_SUBDIV):
    """``day`` itself if it is a working day, else the next one."""
    while not is_working_day(day, subdiv):
        day += timedelta(days=1)
    return day


def local_day(moment):
    """The calendar day in Berlin of a moment (a timezone-aware datetime) or a date."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise DeadlineError("a moment without a time zone: give times in UTC or with their zone")
        return moment.astimezone(BERLIN).date()
    return moment


def add_months(day, months):
    """§188(2)/(3) BGB: the same day number ``months`` later, or the month's last day if it has none."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_end(start, days=0, weeks=0, months=0, years=0, from_event=True, roll=True, subdiv=DEFAULT_SUBDIV):
    """The last day of a period (§§187–193 BGB) that starts at ``start`` (a moment or a day).

    ``from_event``: the period runs from an event during the day (§187(1), the usual case for
    applications and decisions); False for periods from the beginning of a day (§187(2)). ``roll``: move a
    last day on a weekend or holiday to the next working day (§193 BGB, §31(3) VwVfG)."""
    if min(days, weeks, months, years) < 0 or not (days or weeks or months or years):
        raise DeadlineError("a period needs a positive length in days, weeks, months or years")
    first = local_day(start)
    if days and not (weeks or months or years):
        # §187(1): the event's day does not count; §187(2): it does.
        last = first + timedelta(days=days if from_event else days - 1)
    else:
        last = add_months(first, months + 12 * years) + timedelta(weeks=weeks, days=days)
        if not from_event:
            last -= timedelta(days=1)  # §188(2) second half: the day before the corresponding day
    return next_working_day(last, subdiv) if roll else last


def end_of_day(day):
    """The moment a day ends in Berlin (midnight after it), in UTC: when a deadline on ``day`` runs out."""
    return datetime.combine(day + timedelta(days=1), time(0), BERLIN).astimezone(UTC)


def deadline(start, **period):
    """The moment (UTC) a period ends: the end of its last day (``period_end``'s keywords)."""
    return end_of_day(period_end(start, **period))


def reminder(due, working_days=3, subdiv=DEFAULT_SUBDIV):
    """A day ``working_days`` working days before the day ``due`` falls on (Berlin), for a reminder timer."""
    day = local_day(due)
    while working_days > 0:
        day -= timedelta(days=1)
        if is_working_day(day, subdiv):
            working_days -= 1
    return day


# --- §42a VwVfG: deemed approval --------------------------------------------------------------------------


def deemed_approval(documents_complete, months=DEEMED_APPROVAL_MONTHS, subdiv=DEFAULT_SUBDIV):
    """§42a VwVfG: when the application counts as approved if not decided — ``months`` (by default three)
    after the documents were complete. Returns a record to keep in the case:
    ``{"documents_complete", "ends_on", "ends_at", "extended"}`` (times in UTC, days in Berlin)."""
    ends_on = period_end(documents_complete, months=months, subdiv=subdiv)
    return {"documents_complete": _utc_text(documents_complete), "months": months,
            "ends_on": ends_on.isoformat(), "ends_at": _utc_text(end_of_day(ends_on)), "extended": None}


def extend_deemed_approval(record, months, reason, at, subdiv=DEFAULT_SUBDIV):
    """Extend a deemed-approval period once (§42a(2) sentence 3 VwVfG) by ``months``, with a reason.

    The extension runs from the end of the original period. Raises DeadlineError for a second extension, a
    missing reason or an extension decided after the period ended."""
    if record.get("extended"):
        raise DeadlineError("the period of §42a VwVfG can be extended only once")
    if not (reason or "").strip():
        raise DeadlineError("an extension of the §42a period needs a reason (it is recorded)")
    if at > datetime.fromisoformat(record["ends_at"]):
        raise DeadlineError("the §42a period has already ended: the application counts as approved")
    original_end = date.fromisoformat(record["ends_on"])
    ends_on = period_end(original_end, months=months, subdiv=subdiv)
    return {**record, "ends_on": ends_on.isoformat(), "ends_at": _utc_text(end_of_day(ends_on)),
            "extended": {"months": months, "reason": reason.strip(), "at": _utc_text(at),
                         "original_ends_on": original_end.isoformat()}}


# --- §41(2) VwVfG, §122(2) AO: when a decision counts as delivered ------------------------------------------


def delivery_fiction(dispatched, days=DELIVERY_FICTION_DAYS, roll=True, subdiv=DEFAULT_SUBDIV):
    """The day an electronically sent decision counts as delivered: the ``days``-th day after dispatch.

    ``roll``: a day on a weekend or holiday moves to the next working day (BFH for §122(2) AO, applied to §41(2)
    VwVfG by the prevailing view); pass False where the authority counts otherwise."""
    day = local_day(dispatched) + timedelta(days=days)
    return next_working_day(day, subdiv) if roll else day


def postbox_delivery(dispatched, retrieved=None):
    """Via the citizen's postbox: delivered the day after retrieval; ``None`` (not delivered) if not retrieved
    within ten days after dispatch."""
    if retrieved is None or local_day(retrieved) > local_day(dispatched) + timedelta(days=POSTBOX_RETRIEVAL_DAYS):
        return None
    return local_day(retrieved) + timedelta(days=1)


def _utc_text(moment):
    if isinstance(moment, date) and not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(0), BERLIN)
    return moment.astimezone(UTC).isoformat()


def as_service(start, days=0, weeks=0, months=0, years=0, from_event=True, roll=True, subdiv=DEFAULT_SUBDIV):
    """The ``legal_deadline`` connector for service tasks: ``start`` as ISO text (a moment with zone, or a
    day), the period's length; returns ``{"ends_on": "YYYY-MM-DD", "ends_at": "<UTC ISO>"}`` — ``ends_at``
    is what a timer's ``timeDate`` waits for."""
    begin = datetime.fromisoformat(start) if "T" in str(start) else date.fromisoformat(str(start))
    ends_on = period_end(begin, days=int(days), weeks=int(weeks), months=int(months), years=int(years),
                         from_event=bool(from_event), roll=bool(roll), subdiv=subdiv)
    return {"ends_on": ends_on.isoformat(), "ends_at": end_of_day(ends_on).isoformat()}
