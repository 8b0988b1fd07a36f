"""Checks of the tenant settings the shared models, letters and the treasury read (docs/operator.md).

``engine.tenants`` keeps every key of a ``[tenants.<id>]`` table in ``Tenant.settings``; this module checks
the tables whose shape others rely on, so that a typo fails at start with the file and the key named
instead of in a running case:

* ``letterhead`` and ``mail`` (letters, contract A), ``departments``, ``kasse`` (treasury), ``ikz``,
  ``payment_*``;
* ``processes.<process-id>`` (the model settings a case gets as ``stadt``), the shipped models' keys typed,
  and after merging with ``[defaults.processes.<id>]`` their required keys present.
"""

import re
import string

from .errors import ConfigError

LETTERHEAD_KEYS = ("authority", "department", "street", "postcode_city", "phone", "email", "web", "signature_name",
                   "signature_role", "bank")
MAIL_KEYS = {"from_address": str, "smtp_host": str, "smtp_port": int, "smtp_user": str, "smtp_password_env": str,
             "starttls": bool}
KASSE_KEYS = {"target": str, "kassenzeichen_pattern": str, "dir": str, "zahlungsfrist_tage": int}
DEPARTMENT_KEYS = {"name": str, "groups": list, "processes": list, "email": str}
TEXT_KEYS = ("payment_message", "payment_notify_secret", "payment_notify_secret_env")

# Per shipped model: key -> (kind, required after merging with the defaults, what it is)
MONEY, DAYS, TEXT, TABLE, DATES, MONTHS = "money", "days", "text", "table", "dates", "months"
MODEL_KEYS = {
    "hundesteuer-anmeldung": {
        "erster_hund": (MONEY, True, "annual tax for the first dog, EUR"),
        "weiterer_hund": (MONEY, True, "annual tax for the second and every further dog, EUR"),
        "gefaehrlicher_hund": (MONEY, True, "annual tax for a dangerous dog (HundeVO), EUR"),
        "faelligkeiten": (DATES, True, "due dates of the tax, MM-DD"),
        "nachforderung_frist_tage": (DAYS, False, "days the citizen has to send missing documents"),
        "abteilung": (TEXT, False, "department key"),
    },
    "gewerbeanmeldung": {
        "gebuehr_natuerliche_person": (MONEY, True, "fee for a natural person or partnership, EUR"),
        "gebuehr_juristische_person": (MONEY, True, "fee for a legal person (GmbH, UG, AG, eG, e.V. …), EUR"),
        "empfangsstellen": (TABLE, True, "names of the authorities informed (finanzamt, ihk, hwk, gewerbeaufsicht)"),
        "zahlungsfrist_tage": (DAYS, True, "days to pay before a reminder task"),
        "nachforderung_frist_tage": (DAYS, False, "days the citizen has to send missing documents"),
        "abteilung": (TEXT, False, "department key"),
    },
    "bewohnerparkausweis": {
        "gebuehr_jahr": (MONEY, True, "fee for twelve months, EUR"),
        "zonen": (TABLE, True, "zones: [zonen.<key>] name, strassen"),
        "zahlungsfrist_tage": (DAYS, True, "days to pay before a reminder task"),
        "max_gueltigkeit_monate": (MONTHS, True, "longest validity of a permit, months"),
        "abteilung": (TEXT, False, "department key"),
    },
    "digitaler-briefkasten": {
        "antwortfrist_tage": (DAYS, False, "days to answer"),
        "abteilung": (TEXT, False, "department key"),
    },
}
EMPFANGSSTELLEN = ("finanzamt", "ihk", "hwk", "gewerbeaufsicht")
MMDD = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


def _fail(where, message):
    raise ConfigError(f"{where}: {message}")


def _table(value, where, what):
    if not isinstance(value, dict):
        _fail(where, f"must be a table ({what})")
    return value


def _typed(table, keys, where, strict=True):
    for key, value in table.items():
        kind = keys.get(key)
        if kind is None:
            if strict:
                _fail(where, f"unknown key {key!r} (known: {', '.join(keys)})")
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            _fail(where, f"{key!r} must be a whole number, got {value!r}")
        if kind is not int and not isinstance(value, kind):
            _fail(where, f"{key!r} must be {'a text' if kind is str else kind.__name__}, got {value!r}")


def check_pattern(pattern, where, key="kassenzeichen_pattern"):
    """A number pattern needs {seq}; fields are year, seq and tenant only."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as exc:
        _fail(where, f"{key!r} is not a valid pattern: {exc}")
    unknown = fields - {"year", "seq", "tenant"}
    if unknown or "seq" not in fields:
        _fail(where, f"{key!r} must contain {{seq}} and may use {{year}} and {{tenant}} only, got {pattern!r}")
    try:
        pattern.format(year=2025, seq=1, tenant="x")
    except (ValueError, KeyError, IndexError) as exc:
        _fail(where, f"{key!r} cannot be filled in: {exc}")


def check_kasse(table, where):
    _table(table, where, "treasury settings")
    _typed(table, KASSE_KEYS, where)
    if "kassenzeichen_pattern" in table:
        check_pattern(table["kassenzeichen_pattern"], where)
    if "zahlungsfrist_tage" in table and table["zahlungsfrist_tage"] < 1:
        _fail(where, "'zahlungsfrist_tage' must be at least 1")
    if "target" in table:
        from connectors.treasury import TARGETS

        if table["target"] not in TARGETS:
            _fail(where, f"unknown treasury target {table['target']!r} (known: {', '.join(TARGETS)})")


def _check_model_value(kind, key, value, where, what):
    if kind == MONEY and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        _fail(where, f"{key!r} ({what}) must be a number of at least 0, got {value!r}")
    if kind in (DAYS, MONTHS) and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        _fail(where, f"{key!r} ({what}) must be a whole number of at least 1, got {value!r}")
    if kind == TEXT and (not isinstance(value, str) or not value):
        _fail(where, f"{key!r} ({what}) must be a text")
    if kind == DATES and (not isinstance(value, list) or not value
                          or not all(isinstance(v, str) and MMDD.match(v) for v in value)):
        _fail(where, f"{key!r} ({what}) must be a list of dates like \"02-15\", got {value!r}")
    if kind == TABLE:
        _table(value, f"{where}.{key}", what)
        if key == "zonen":
            _check_zones(value, f"{where}.zonen")
        elif key == "empfangsstellen":
            for name, text in value.items():
                if not isinstance(text, str) or not text:
                    _fail(f"{where}.empfangsstellen", f"{name!r} must be the authority's name as text")


def _check_zones(zones, where):
    if not zones:
        _fail(where, "at least one zone is needed")
    seen = {}
    for key, zone in zones.items():
        _table(zone, f"{where}.{key}", "a zone with name and strassen")
        if not isinstance(zone.get("name"), str) or not zone["name"]:
            _fail(f"{where}.{key}", "'name' is missing or not a text")
        streets = zone.get("strassen")
        if not isinstance(streets, list) or not streets or not all(isinstance(s, str) and s.strip() for s in streets):
            _fail(f"{where}.{key}", "'strassen' must be a non-empty list of street names")
        for street in streets:
            norm = normalise_street(street)
            if norm in seen and seen[norm] != key:
                _fail(f"{where}.{key}", f"street {street!r} is in zone {seen[norm]!r} as well")
            seen[norm] = key


def normalise_street(name):
    """How street names are compared: case, 'str.'/'straße', spaces and hyphens do not matter."""
    text = name.strip().lower().replace("ß", "ss")
    text = re.sub(r"str\.?$", "strasse", text)
    return re.sub(r"[\s\-]+", "", text)


def check_processes(table, where, departments=None):
    """``processes.<id>`` tables: the shipped models' keys typed; other models' tables kept as they are."""
    _table(table, where, "one table per process id")
    for pid, settings in table.items():
        here = f"{where}.{pid}"
        _table(settings, here, "the model's settings")
        for key, (kind, _required, what) in MODEL_KEYS.get(pid, {}).items():
            if key in settings:
                _check_model_value(kind, key, settings[key], here, what)
        dept = settings.get("abteilung")
        if departments is not None and dept is not None and dept not in departments:
            _fail(here, f"'abteilung' {dept!r} is not one of the tenant's departments ({', '.join(departments)})")


def check_required(merged, pid, where):
    """After merging with the defaults: the shipped model's required keys are there."""
    for key, (_kind, required, what) in MODEL_KEYS.get(pid, {}).items():
        if required and key not in merged:
            _fail(where, f"'{key}' is missing ({what}); set it in [tenants.<id>.processes.{pid}] or "
                         f"[defaults.processes.{pid}]")
    if pid == "gewerbeanmeldung":
        missing = [k for k in EMPFANGSSTELLEN if k not in merged.get("empfangsstellen", {})]
        if missing:
            _fail(f"{where}.empfangsstellen", f"missing: {', '.join(missing)}")


def _check_departments(departments, where):
    _table(departments, where, "one table per department")
    for key, dept in departments.items():
        here = f"{where}.{key}"
        _typed(_table(dept, here, "name, groups, processes, email"), DEPARTMENT_KEYS, here)
        if not isinstance(dept.get("name"), str) or not dept["name"]:
            _fail(here, "'name' is missing or not a text")
        for list_key in ("groups", "processes"):
            if not all(isinstance(g, str) and g for g in dept.get(list_key, [])):
                _fail(here, f"'{list_key}' must be a list of texts")


def check_settings(table, where, defaults):
    """Check one ``[tenants.<id>]`` table's settings (``where`` names file and table)."""
    for key in TEXT_KEYS:
        if key in table and (not isinstance(table[key], str) or not table[key]):
            _fail(where, f"{key!r} must be a text")
    if "letterhead" in table:
        _typed(_table(table["letterhead"], f"{where}.letterhead", "letterhead texts"),
               dict.fromkeys(LETTERHEAD_KEYS, str), f"{where}.letterhead")
    if "mail" in table:
        _typed(_table(table["mail"], f"{where}.mail", "mail settings"), MAIL_KEYS, f"{where}.mail")
    departments = table.get("departments")
    if departments is not None:
        _check_departments(departments, f"{where}.departments")
    if "kasse" in table:
        check_kasse(table["kasse"], f"{where}.kasse")
    if "ikz" in table:
        days = _table(table["ikz"], f"{where}.ikz", "IKZ settings").get("processing_days", {})
        for pid, value in _table(days, f"{where}.ikz.processing_days", "process id = days").items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                _fail(f"{where}.ikz.processing_days", f"{pid!r} must be a number of days above 0, got {value!r}")
    own = table.get("processes", {})
    check_processes(own, f"{where}.processes", departments)
    base = defaults.get("processes", {}) if isinstance(defaults.get("processes", {}), dict) else {}
    for pid in set(base) | set(own):
        dept = {**(base.get(pid) or {}), **(own.get(pid) or {})}.get("abteilung")
        if departments is not None and dept is not None and dept not in departments:
            _fail(f"{where}.processes.{pid}", f"'abteilung' {dept!r} (from the defaults) is not one of the "
                                              f"tenant's departments ({', '.join(departments)})")


def check_offered(path, config):
    """Each tenant's settings are complete for the shipped models it offers: the processes bound to the LeiKa
    keys of its FIT-Connect destinations (every bound process when it has no destination), merged with
    ``[defaults.processes.<id>]``. A city that does not offer a service needs no settings for it."""
    base = config.defaults.get("processes") or {}
    for tenant in config.tenants.values():
        services = {s for d in tenant.destinations for s in d.services}
        offered = {b.process for b in config.bindings if b.tenant in (None, tenant.id)
                   and (not tenant.destinations or b.leika in services)}
        own = tenant.settings.get("processes") or {}
        for pid in sorted(offered & set(MODEL_KEYS)):
            if pid in base or pid in own:
                merged = {**(base.get(pid) or {}), **(own.get(pid) or {})}
                check_required(merged, pid, f"{path}: [tenants.{tenant.id}].processes.{pid}")


def check_defaults(defaults, where):
    """The ``[defaults]`` tables others read: mail, kasse, processes."""
    if "mail" in defaults:
        _typed(_table(defaults["mail"], f"{where}.mail", "mail settings"), MAIL_KEYS, f"{where}.mail")
    if "kasse" in defaults:
        check_kasse(defaults["kasse"], f"{where}.kasse")
    if "processes" in defaults:
        check_processes(defaults["processes"], f"{where}.processes")
