"""The engine's working set for one process: database, tenants, clock, connectors and the spec cache.

A ``Runtime`` is made once per process (command, web worker, background worker) and passed to the
functions of ``engine.cases`` and ``engine.deploy``. Specs of a process version are deserialized once
and cached: a case's stored state holds no spec, only its version id.
"""

import json
import zlib
from dataclasses import dataclass, field
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from connectors.services import default_services

from .config import Settings
from .db import make_engine
from .errors import CaseError, NotFound
from .lean import Lean
from .letters import attach_letters
from .models import load_specs
from .restricted import ScriptEngine
from .schema import utcnow
from .specs import engine_config
from .tenants import load_tenants

SERIALIZER_VERSION = "1.5"


class StateConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its spec; the spec comes from the version cache on restore."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore_with(self, dct, spec, subprocess_specs):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class StateSerializer:
    """zlib-compressed JSON of a workflow's state (tasks, data, events), spec excluded."""

    def __init__(self, config):
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
        self.converter = StateConverter(BpmnWorkflow, self.serializer.registry)

    def dump(self, workflow):
        registry = self.serializer.registry
        registry._encoder_mode = True  # what serialize_json does: encode via the registry's JSON encoder
        try:
            text = json.dumps(self.converter.to_dict(workflow), cls=self.serializer._encoder_cls,
                              separators=(",", ":"))
        except TypeError as exc:
            raise CaseError(f"the case data holds a value that cannot be stored ({exc}); "
                            "use text, numbers, lists and objects only") from None
        finally:
            registry._encoder_mode = False
        return zlib.compress(text.encode("utf-8"), 1)  # level 1: nearly as small, a third of the time

    def load(self, blob, spec, subprocess_specs):
        dct = json.loads(zlib.decompress(blob), cls=self.serializer.json_decoder_cls)
        return self.converter.restore_with(dct, spec, subprocess_specs)


STATE_SERIALIZERS = {"spiff": StateSerializer(engine_config(SPIFF_CONFIG)),
                     "camunda": StateSerializer(engine_config(CAMUNDA_CONFIG))}


@dataclass
class LoadedVersion:
    id: int
    process_id: str
    version: int
    dialect: str
    spec: object
    subprocess_specs: dict
    meta: dict
    validators: dict = field(default_factory=dict)  # element id -> compiled JSON Schema validator

    @property
    def serializer(self):
        return STATE_SERIALIZERS[self.dialect]


class Runtime:
    """Database, tenant configuration, clock, service connectors and the cache of loaded versions."""

    def __init__(self, settings=None, db=None, tenants=None, services=None, clock=None):
        self.settings = settings or Settings.from_env()
        self.db = db or make_engine(self.settings.database_url)
        self.reader = self.db.execution_options(readonly=True)
        self.tenants = tenants or load_tenants(self.settings.tenants_file)
        self.services = default_services() if services is None else services
        self.clock = clock or utcnow
        self.script_engine = ScriptEngine(self.services)
        # Callables (db, StepContext) run inside the transaction of every start and task completion, after
        # the case is written: the seam for scheduling timers and the like (see engine.cases._after_step).
        self.step_hooks = []
        # Timers, messages and service calls as jobs (engine.jobs). Imported here, not at the top: those
        # modules import engine.cases, which imports this one.
        from .applicants import install as install_applicants
        from .jobs import install

        install(self)
        install_applicants(self)  # the applicant's name, stored when a case starts, for the inbox's search
        self._versions = {}

    def version(self, conn, version_id):
        """The loaded specs of a stored version (cached for the life of the runtime).

        ``conn`` is a SQLAlchemy connection or an ``engine.lean.Lean`` cursor."""
        loaded = self._versions.get(version_id)
        if loaded is None:
            db = conn if isinstance(conn, Lean) else Lean(conn)
            row = db.one("SELECT id, process_id, version, dialect, spec, meta FROM process_version WHERE id = ?",
                         (version_id,))
            if row is None:
                raise NotFound(f"no process version with id {version_id}")
            spec, subs = load_specs(row[3], bytes(row[4]))
            loaded = LoadedVersion(row[0], row[1], row[2], row[3], spec, subs, json.loads(row[5]))
            attach_letters(db, loaded)  # which send tasks carry letters (engine.letters, engine.dispatch)
            self._versions[version_id] = loaded
        return loaded

    def close(self):
        self.db.dispose()
