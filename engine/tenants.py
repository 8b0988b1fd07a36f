"""Tenants (the cities) and service bindings, read from one TOML file.

Tenants are configuration, not rows: they exist as soon as the file is readable. The same file binds
services to processes: (tenant or every tenant, LeiKa key) -> process id.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, NotFound


@dataclass(frozen=True)
class Binding:
    leika: str
    process: str
    tenant: str | None = None  # None: every tenant
    name: str = ""
    aktenplan: str | None = None


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    ags: str
    aktenzeichen_pattern: str
    aktenplan: str
    settings: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class TenantConfig:
    tenants: dict  # id -> Tenant, in file order
    bindings: tuple  # Binding, tenant-specific ones and shared ones

    def get(self, tenant_id):
        """The tenant with this id, or NotFound naming the ones that exist."""
        try:
            return self.tenants[tenant_id]
        except KeyError:
            known = ", ".join(self.tenants)
            raise NotFound(f"unknown tenant {tenant_id!r} (configured: {known})") from None

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
        tenants[tid] = Tenant(
            id=tid,
            name=_require(table, "name", where),
            ags=ags,
            aktenzeichen_pattern=table.get("aktenzeichen_pattern", pattern),
            aktenplan=table.get("aktenplan", aktenplan),
            settings={k: v for k, v in table.items() if k != "bindings"},
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
    return TenantConfig(tenants=tenants, bindings=tuple(bindings))


def _binding(table, where, tenant):
    return Binding(
        leika=_require(table, "leika", where),
        process=_require(table, "process", where),
        tenant=tenant,
        name=table.get("name", ""),
        aktenplan=table.get("aktenplan"),
    )
