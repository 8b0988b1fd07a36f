"""Tenants (the cities) and service bindings, read from one TOML file.

Tenants are configuration, not rows: they exist as soon as the file is readable. The same file binds
services to processes: (tenant or every tenant, LeiKa key) -> process id, and names each tenant's
FIT-Connect destinations (Zustellpunkte: where the OZG mailbox delivers its applications).
"""

import os
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, NotFound
from .tenant_settings import check_defaults, check_offered, check_settings


@dataclass(frozen=True)
class Binding:
    leika: str
    process: str
    tenant: str | None = None  # None: every tenant
    name: str = ""
    aktenplan: str | None = None


@dataclass(frozen=True)
class Destination:
    """One FIT-Connect destination of a tenant and the receiving client that picks up from it.

    ``services`` are the LeiKa keys the destination accepts. ``keys_dir`` is an explicit folder for the
    destination's JWK files, None for the default ``<var>/keys/<id>`` (see connectors/fitconnect/keys.py).
    """

    id: str
    tenant: str
    services: tuple  # LeiKa keys (14 digits)
    client_id: str
    client_secret: str = field(default="", repr=False, compare=False)
    client_secret_env: str | None = None
    keys_dir: str | None = None

    def secret(self, environ=None):
        """The client secret: from the variable named by ``client_secret_env`` when set, else from the file."""
        env = os.environ if environ is None else environ
        if self.client_secret_env:
            value = env.get(self.client_secret_env)
            if not value:
                raise ConfigError(f"destination {self.id}: environment variable {self.client_secret_env} "
                                  "(client_secret_env) is not set")
            return value
        if not self.client_secret:
            raise ConfigError(f"destination {self.id}: neither client_secret nor client_secret_env is set")
        return self.client_secret


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    ags: str
    aktenzeichen_pattern: str
    aktenplan: str
    settings: dict = field(default_factory=dict, compare=False, hash=False)
    destinations: tuple = ()  # Destination, in file order


@dataclass(frozen=True)
class TenantConfig:
    tenants: dict  # id -> Tenant, in file order
    bindings: tuple  # Binding, tenant-specific ones and shared ones
    defaults: dict = field(default_factory=dict, compare=False, hash=False)  # the file's [defaults] table

    def case_settings(self, tenant_id, process_id):
        """The variable ``stadt`` a new case of ``process_id`` gets (None if the file configures no
        ``processes.<process_id>`` table for it, by default or for the tenant): the tenant's id, name, ags,
        letterhead, departments (``abteilungen``), treasury settings (``kasse``), processing deadline
        (``bearbeitungsfrist_tage``) and the model's settings, the tenant's merged over the defaults."""
        t = self.get(tenant_id)
        base = (self.defaults.get("processes") or {}).get(process_id)
        own = (t.settings.get("processes") or {}).get(process_id)
        if base is None and own is None:
            return None
        result = {"id": t.id, "name": t.name, "ags": t.ags,
                  "letterhead": dict(t.settings.get("letterhead") or {}),
                  "abteilungen": {k: dict(v) for k, v in (t.settings.get("departments") or {}).items()},
                  "kasse": _merged(self.defaults.get("kasse") or {}, t.settings.get("kasse") or {})}
        days = ((t.settings.get("ikz") or {}).get("processing_days") or {}).get(process_id)
        if days is not None:
            result["bearbeitungsfrist_tage"] = days
        result.update(_merged(base or {}, own or {}))
        return result

    def get(self, tenant_id):
        """The tenant with this id, or NotFound naming the ones that exist."""
        try:
            return self.tenants[tenant_id]
        except KeyError:
            known = ", ".join(self.tenants)
            raise NotFound(f"unknown tenant {tenant_id!r} (configured: {known})") from None

    @property
    def destinations(self):
        """Every FIT-Connect destination of every tenant, in file order."""
        return tuple(d for t in self.tenants.values() for d in t.destinations)

    def destination(self, destination_id):
        """The destination with this id, or NotFound."""
        for d in self.destinations:
            if d.id == destination_id:
                return d
        raise NotFound(f"no tenant has the FIT-Connect destination {destination_id!r}")

    def process_for(self, tenant_id, leika):
        """The binding that serves LeiKa key ``leika`` for ``tenant_id``, or None.

        A tenant's own binding wins over one for every tenant."""
        self.get(tenant_id)
        own = [b for b in self.bindings if b.tenant == tenant_id and b.leika == leika]
        shared = [b for b in self.bindings if b.tenant is None and b.leika == leika]
        return (own or shared or [None])[0]

    def binding_for_process(self, tenant_id, process_id):
        """The binding (the tenant's own first) whose process is ``process_id``, or None."""
        found = [b for b in self.bindings if b.process == process_id and b.tenant in (tenant_id, None)]
        found.sort(key=lambda b: b.tenant is None)
        return found[0] if found else None


def _merged(base, own):
    """``own`` over ``base``; tables merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


def _require(table, key, where):
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: '{key}' is missing or not a text")
    return value


def load_tenants(path):
    """Read and check the tenant file at ``path``; errors name the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: tenant configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    defaults = raw.get("defaults", {})
    pattern = defaults.get("aktenzeichen_pattern", "{aktenplan}-{year}-{seq:05}")
    aktenplan = defaults.get("aktenplan", "000")
    tenants = {}
    bindings = []
    for tid, table in (raw.get("tenants") or {}).items():
        where = f"{path}: [tenants.{tid}]"
        if not tid.isidentifier() or tid != tid.lower():
            raise ConfigError(f"{where}: a tenant id is lower-case letters, digits and '_'")
        ags = _require(table, "ags", where)
        if not (ags.isdigit() and len(ags) == 8):
            raise ConfigError(f"{where}: 'ags' must be the 8-digit Amtlicher Gemeindeschlüssel, got {ags!r}")
        check_settings(table, where, defaults)
        tenants[tid] = Tenant(
            id=tid,
            name=_require(table, "name", where),
            ags=ags,
            aktenzeichen_pattern=table.get("aktenzeichen_pattern", pattern),
            aktenplan=table.get("aktenplan", aktenplan),
            settings={k: v for k, v in table.items() if k not in ("bindings", "destinations")},
            destinations=tuple(_destination(d, f"{where} destinations[{i}]", tid)
                               for i, d in enumerate(table.get("destinations", []))),
        )
        for i, b in enumerate(table.get("bindings", [])):
            bindings.append(_binding(b, f"{where} bindings[{i}]", tid))
    if not tenants:
        raise ConfigError(f"{path}: no [tenants.<id>] table")
    for i, b in enumerate(raw.get("bindings", [])):
        owner = b.get("tenant")
        if owner is not None and owner not in tenants:
            raise ConfigError(f"{path}: bindings[{i}]: unknown tenant {owner!r}")
        bindings.append(_binding(b, f"{path}: bindings[{i}]", owner))
    _check_unique_destinations(path, tenants.values())
    check_defaults(defaults, f"{path}: [defaults]")
    config = TenantConfig(tenants=tenants, bindings=tuple(bindings), defaults=defaults)
    check_offered(path, config)
    return config


def _binding(table, where, tenant):
    return Binding(
        leika=_require(table, "leika", where),
        process=_require(table, "process", where),
        tenant=tenant,
        name=table.get("name", ""),
        aktenplan=table.get("aktenplan"),
    )


def _destination(table, where, tenant):
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: a destination is a table with id, services and client_id")
    did = _require(table, "id", where)
    try:
        canonical = str(uuid.UUID(did))
    except ValueError:
        canonical = None
    if canonical != did:
        raise ConfigError(f"{where}: 'id' must be a destination UUID in lower case, got {did!r}")
    services = table.get("services")
    if not isinstance(services, list) or not all(isinstance(s, str) and s.isdigit() and len(s) == 14
                                                 for s in services):
        raise ConfigError(f"{where}: 'services' must be a list of 14-digit LeiKa keys")
    secret_env = table.get("client_secret_env")
    if secret_env is not None and (not isinstance(secret_env, str) or not secret_env):
        raise ConfigError(f"{where}: 'client_secret_env' must name an environment variable")
    keys_dir = table.get("keys")
    if keys_dir is not None and (not isinstance(keys_dir, str) or not keys_dir):
        raise ConfigError(f"{where}: 'keys' must be a folder path")
    return Destination(id=did, tenant=tenant, services=tuple(services), client_id=_require(table, "client_id", where),
                       client_secret=table.get("client_secret") or "", client_secret_env=secret_env,
                       keys_dir=keys_dir)


def _check_unique_destinations(path, tenants):
    """A destination belongs to one tenant, and a receiving client to one destination."""
    seen_ids, seen_clients = {}, {}
    for t in tenants:
        for d in t.destinations:
            if d.id in seen_ids:
                raise ConfigError(f"{path}: destination {d.id} is configured for both {seen_ids[d.id]} and {t.id}")
            if d.client_id in seen_clients:
                raise ConfigError(f"{path}: client_id {d.client_id!r} is used by two destinations "
                                  f"({seen_clients[d.client_id]} and {d.id})")
            seen_ids[d.id], seen_clients[d.client_id] = t.id, d.id
