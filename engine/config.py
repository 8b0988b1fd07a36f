"""Settings from the environment, every default written down once.

| variable               | default                                   |
|------------------------|-------------------------------------------|
| OZGFLOW_VAR            | ./var (the working directory's var/)      |
| OZGFLOW_DATABASE_URL   | sqlite:///<OZGFLOW_VAR>/ozgflow.sqlite    |
| OZGFLOW_TENANTS        | the shipped engine/defaults/tenants.toml  |
| OZGFLOW_PROCESSES      | the project's processes/ folder           |
| OZGFLOW_MAX_XML_BYTES  | 10485760 (10 MiB per BPMN/DMN/form file)  |
"""

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parent
DEFAULT_TENANTS = PACKAGE_ROOT / "defaults" / "tenants.toml"
DEFAULT_PROCESSES = PROJECT_ROOT / "processes"


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str
    tenants_file: Path
    processes_dir: Path
    max_xml_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_env(cls, environ=None):
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("OZGFLOW_VAR") or Path.cwd() / "var")
        url = env.get("OZGFLOW_DATABASE_URL") or f"sqlite:///{var_dir / 'ozgflow.sqlite'}"
        return cls(
            var_dir=var_dir,
            database_url=url,
            tenants_file=Path(env.get("OZGFLOW_TENANTS") or DEFAULT_TENANTS),
            processes_dir=Path(env.get("OZGFLOW_PROCESSES") or DEFAULT_PROCESSES),
            max_xml_bytes=int(env.get("OZGFLOW_MAX_XML_BYTES") or 10 * 1024 * 1024),
        )
