"""The city's treasury (Stadtkasse): fees and taxes raised in a case, handed over as one record each.

One small interface (``TreasuryTarget.hand_over(record)``) in the manner of ``connectors.efile``: the engine
builds a finished record and the target takes it; a finance system adapter (SAP, H&H, Infoma …) implements
the same method and registers in ``TARGETS`` by name. The shipped target ``FileTreasury`` writes one JSON file
per record to ``<OZGFLOW_VAR>/kasse/<tenant>/<kassenzeichen>.json`` (or the tenant's ``[kasse] dir``), which
an importer of the finance system reads.

A record::

    {"kassenzeichen": "MR-2025-000001", "tenant": "marburg", "aktenzeichen": "MR-022.31-2025-00001",
     "case_id": 1, "process_id": "hundesteuer-anmeldung",
     "debtor": {"name": "…", "address": "…"}, "amount_cents": 9000, "currency": "EUR",
     "purpose": "Hundesteuer …", "due_dates": ["2025-08-15", …],
     "paid": null | {"transaction_id", "method", "amount_cents", "at"}, "case_created_at": "…Z"}

BPMN reaches it through the service task operation ``kasse_sollstellung`` (``sollstellung`` below), which
needs its case: it runs as a background service call (declare ``<spiffworkflow:retry …/>``), where the
engine hands it the case's id, tenant and Aktenzeichen. The Kassenzeichen comes from the tenant's
``kassenzeichen_pattern`` with a counter per tenant and year. Calls are at-least-once: the idempotency key
of the call makes a repeated call return the first call's Kassenzeichen and write nothing new.
"""

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from engine.files import write_atomically

BERLIN = ZoneInfo("Europe/Berlin")
RECORD_KEYS = ("kassenzeichen", "tenant", "aktenzeichen", "case_id", "debtor", "amount_cents", "currency", "purpose",
               "due_dates", "process_id")


class TreasuryError(Exception):
    """The treasury could not take a record, or the record is incomplete."""


class TreasuryTarget(Protocol):
    name: str

    def hand_over(self, record: dict) -> str:
        """Take one record; return where it went (recorded in the case). Handing over the same
        Kassenzeichen again with the same content is no error; with other content it is."""


class FileTreasury:
    """One JSON file per record in a directory the finance system's importer reads."""

    name = "file"

    def __init__(self, directory):
        self.directory = Path(directory)

    def path_for(self, kassenzeichen):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in kassenzeichen)
        if not safe or safe.startswith("."):
            raise TreasuryError(f"not a usable Kassenzeichen for a file name: {kassenzeichen!r}")
        return self.directory / f"{safe}.json"

    def hand_over(self, record):
        check_record(record)
        target = self.path_for(record["kassenzeichen"])
        content = json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        try:
            if target.exists():
                if target.read_bytes() == content:
                    return str(target)
                raise TreasuryError(f"{target} exists with other content: a record is never overwritten")
            write_atomically(target, content)
        except OSError as exc:
            raise TreasuryError(f"cannot write {target}: {exc}") from exc
        return str(target)

    def existing(self, kassenzeichen):
        """The record handed over under this Kassenzeichen, or None."""
        try:
            return json.loads(self.path_for(kassenzeichen).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def remembered(self, key):
        """The Kassenzeichen handed out for idempotency key ``key`` before, or None."""
        path = self._key_path(key)
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def remember(self, key, kassenzeichen):
        write_atomically(self._key_path(key), kassenzeichen.encode("utf-8"))

    def _key_path(self, key):
        return self.directory / ".calls" / hashlib.sha256(key.encode("utf-8")).hexdigest()


TARGETS = {"file": FileTreasury}


def check_record(record):
    """A record has every field of the contract with the right types (TreasuryError naming the field)."""
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise TreasuryError(f"the treasury record lacks {', '.join(missing)}")
    if not isinstance(record["amount_cents"], int) or isinstance(record["amount_cents"], bool) \
            or record["amount_cents"] < 0:
        raise TreasuryError(f"amount_cents must be a whole number of cents ≥ 0, got {record['amount_cents']!r}")
    if record["currency"] != "EUR":
        raise TreasuryError(f"currency must be EUR, got {record['currency']!r}")
    debtor = record["debtor"]
    if not isinstance(debtor, dict) or not isinstance(debtor.get("name"), str) or not debtor["name"].strip():
        raise TreasuryError("debtor.name is missing")
    if not isinstance(record["due_dates"], list) or not record["due_dates"]:
        raise TreasuryError("due_dates must name at least one date")
    for d in record["due_dates"]:
        try:
            date.fromisoformat(d)
        except (TypeError, ValueError):
            raise TreasuryError(f"due date {d!r} is not YYYY-MM-DD") from None
    if not isinstance(record["purpose"], str) or not record["purpose"].strip():
        raise TreasuryError("purpose is missing")


# --- settings, numbers ----------------------------------------------------------------------------------

DEFAULTS = {"target": "file", "kassenzeichen_pattern": "{tenant}-{year}-{seq:06}", "zahlungsfrist_tage": 30}


def kasse_settings(rt, tenant):
    """The tenant's treasury settings: ``[defaults.kasse]`` under ``[tenants.<id>.kasse]``, with ``dir``."""
    t = rt.tenants.get(tenant)
    merged = {**DEFAULTS, **(getattr(rt.tenants, "defaults", {}).get("kasse") or {}), **(t.settings.get("kasse") or {})}
    merged["dir"] = Path(merged["dir"]) if merged.get("dir") else rt.settings.var_dir / "kasse" / tenant
    return merged


def target_for(rt, tenant):
    settings = kasse_settings(rt, tenant)
    factory = TARGETS.get(settings["target"])
    if factory is None:
        raise TreasuryError(f"tenant {tenant}: unknown treasury target {settings['target']!r} "
                            f"(known: {', '.join(TARGETS)})")
    return factory(settings["dir"])


NEXT = ("INSERT INTO counter (tenant, scope, value) VALUES (?, ?, 1) ON CONFLICT (tenant, scope) "
        "DO UPDATE SET value = counter.value + 1 RETURNING value")


def next_number(rt, tenant, kind, pattern):
    """The next number of ``kind`` for ``tenant`` from ``pattern`` ({year}, {seq}, {tenant}); the counter
    runs per tenant and, when the pattern uses {year}, per year (Europe/Berlin)."""
    from engine.lean import Lean

    year = rt.clock().astimezone(BERLIN).year
    scope = f"{kind}:{year}" if "{year" in pattern else kind
    with Lean.transaction(rt.db) as db:
        seq = db.one(NEXT, (tenant, scope))[0]
    return pattern.format(year=year, seq=seq, tenant=tenant)


# --- due dates ------------------------------------------------------------------------------------------


def due_dates_from(today, due_dates=None, due_in_days=None, recurring=None):
    """Explicit dates (YYYY-MM-DD), else the next occurrence of each MM-DD in ``recurring`` within a year,
    else ``today`` + ``due_in_days``."""
    if due_dates:
        return [date.fromisoformat(str(d)).isoformat() for d in due_dates]
    if recurring:
        found = []
        for mmdd in recurring:
            month, day = (int(x) for x in str(mmdd).split("-"))
            when = date(today.year, month, day)
            if when <= today:
                when = date(today.year + 1, month, day)
            found.append(when)
        return [d.isoformat() for d in sorted(found)]
    return [(today + timedelta(days=int(due_in_days))).isoformat()]


def cents(amount):
    """EUR (number or text like "26.00") to whole cents, rounding half up."""
    from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise TreasuryError(f"amount {amount!r} is not a number") from None
    if value < 0:
        raise TreasuryError(f"amount {amount!r} is negative")
    return int(value * 100)


def _paid(payment):
    if not isinstance(payment, dict) or str(payment.get("status", "")).upper() != "BOOKED":
        return None
    return {"transaction_id": payment.get("transactionId"), "method": payment.get("paymentMethod"),
            "amount_cents": cents(payment.get("grossAmount") or 0), "at": payment.get("transactionTimestamp")}


def _fresh_number(rt, tenant, target, pattern, tries=1000):
    """The next Kassenzeichen the treasury has not seen: a number it holds already (the database was reset while
    the treasury kept its records) is skipped, never handed out twice."""
    for _ in range(tries):
        kassenzeichen = next_number(rt, tenant, "kasse", pattern)
        if not hasattr(target, "existing") or target.existing(kassenzeichen) is None:
            return kassenzeichen
    raise TreasuryError(f"tenant {tenant}: {tries} Kassenzeichen in a row are taken in the treasury already")


def sollstellung(case, amount, purpose, debtor_name, debtor_address="", due_dates=None, due_in_days=None,
                 faelligkeiten=None, payment=None, idempotency_key=None):
    """Service ``kasse_sollstellung``: hand one receivable of the case to the tenant's treasury.

    ``amount`` in EUR; due dates explicit (``due_dates``), recurring (``faelligkeiten``, MM-DD) or
    ``due_in_days`` after today (default the tenant's ``zahlungsfrist_tage``). ``payment`` is the
    submission's ``paymentInformation`` when the citizen paid online already (recorded as ``paid``).
    Returns ``{"kassenzeichen", "amount_cents", "due_dates", "location"}``."""
    rt = case.rt
    settings = kasse_settings(rt, case.tenant)
    target = target_for(rt, case.tenant)
    kassenzeichen = target.remembered(idempotency_key) if idempotency_key and hasattr(target, "remembered") \
        else None
    if kassenzeichen is not None and hasattr(target, "existing"):
        done = target.existing(kassenzeichen)
        if done is not None:  # a repeated call: the first one's record stands
            return {"kassenzeichen": kassenzeichen, "amount_cents": done["amount_cents"],
                    "due_dates": done["due_dates"], "paid": done.get("paid") is not None,
                    "location": str(target.path_for(kassenzeichen))}
    if kassenzeichen is None:
        kassenzeichen = _fresh_number(rt, case.tenant, target, settings["kassenzeichen_pattern"])
        if idempotency_key and hasattr(target, "remember"):
            target.remember(idempotency_key, kassenzeichen)
    today = rt.clock().astimezone(BERLIN).date()
    days = due_in_days if due_in_days is not None else settings["zahlungsfrist_tage"]
    record = {
        "kassenzeichen": kassenzeichen, "tenant": case.tenant, "aktenzeichen": case.aktenzeichen,
        "case_id": case.case_id, "process_id": case.process_id,
        "debtor": {"name": str(debtor_name or "").strip(), "address": str(debtor_address or "").strip()},
        "amount_cents": cents(amount), "currency": "EUR", "purpose": str(purpose or "").strip(),
        "due_dates": due_dates_from(today, due_dates, days, faelligkeiten), "paid": _paid(payment),
        "case_created_at": case.created_at,
    }
    location = target.hand_over(record)
    return {"kassenzeichen": kassenzeichen, "amount_cents": record["amount_cents"], "due_dates": record["due_dates"],
            "paid": record["paid"] is not None, "location": location}


sollstellung.wants_case = True  # the engine passes ``case`` (connectors.services.CaseContext)


def nummer_vergeben(case, kreis, muster="{year}-{seq:05}"):
    """Service ``nummer_vergeben``: the next number of the tenant's number circle ``kreis`` (e.g. the
    Steuermarke), from ``muster`` ({year}, {seq}, {tenant}). Returns ``{"nummer": "…"}``."""
    from engine.tenant_settings import check_pattern

    if not isinstance(kreis, str) or not kreis.isidentifier():
        raise TreasuryError(f"the number circle must be a plain name, got {kreis!r}")
    try:
        check_pattern(muster, f"nummer_vergeben({kreis})", "muster")
    except Exception as exc:
        raise TreasuryError(str(exc)) from None
    return {"nummer": next_number(case.rt, case.tenant, f"nummer:{kreis}", muster)}


nummer_vergeben.wants_case = True
