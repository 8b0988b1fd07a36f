"""The five cities' configuration reaches the shared models; a sixth city is configuration only; the treasury.

Real databases (SQLite and PostgreSQL), the shipped tenants.toml and models, the file-based treasury."""

import json
import re
import shutil

import pytest
from conftest import ROOT, make_runtime

from connectors.treasury import FileTreasury, TreasuryError, check_record, due_dates_from
from engine.cases import get_case, list_tasks, start_case
from engine.deploy import bundles_from_paths, deploy
from engine.errors import ConfigError
from engine.examples import run_example
from engine.intake import _process_for
from engine.lean import Lean
from engine.tenants import load_tenants

SHIPPED = ROOT / "engine" / "defaults" / "tenants.toml"
CITIES = ("marburg", "wetzlar", "giessen", "limburg", "fulda")
MODELS = ("hundesteuer-anmeldung", "gewerbeanmeldung", "bewohnerparkausweis", "digitaler-briefkasten")

KASSEL = """
[tenants.kassel]
name = "Stadt Kassel"
ags = "06611000"
aktenzeichen_pattern = "KS-{aktenplan}-{year}-{seq:05}"

[tenants.kassel.letterhead]
authority = "Stadt Kassel"
street = "Obere Königsstraße 8"
postcode_city = "34117 Kassel"

[tenants.kassel.departments.steueramt]
name = "Steuer- und Kassenamt"
groups = ["steuern"]

[tenants.kassel.departments.gewerbeamt]
name = "Ordnungsamt"
groups = ["gewerbe"]

[tenants.kassel.departments.strassenverkehr]
name = "Straßenverkehrsbehörde"
groups = ["verkehr"]

[tenants.kassel.departments.poststelle]
name = "Poststelle"
groups = ["posteingang"]

[tenants.kassel.processes.hundesteuer-anmeldung]
erster_hund = 120.0
weiterer_hund = 180.0
gefaehrlicher_hund = 900.0

[tenants.kassel.processes.gewerbeanmeldung]
gebuehr_natuerliche_person = 30.0
gebuehr_juristische_person = 45.0

[tenants.kassel.processes.gewerbeanmeldung.empfangsstellen]
finanzamt = "Finanzamt Kassel"
ihk = "IHK Kassel-Marburg"
hwk = "Handwerkskammer Kassel"
gewerbeaufsicht = "Regierungspräsidium Kassel"

[tenants.kassel.processes.bewohnerparkausweis]
gebuehr_jahr = 30.7

[tenants.kassel.processes.bewohnerparkausweis.zonen.K1]
name = "Vorderer Westen"
strassen = ["Friedrich-Ebert-Straße", "Goethestraße"]
"""


def example(process, name):
    return json.loads((ROOT / "processes" / process / "tests" / f"{name}.json").read_text(encoding="utf-8"))


def with_file(tmp_path, extra, replace=None):
    text = SHIPPED.read_text(encoding="utf-8")
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "tenants.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


# --- the configuration --------------------------------------------------------------------------------------


def test_five_cities_each_have_every_setting_the_models_read():
    config = load_tenants(SHIPPED)
    assert tuple(config.tenants) == CITIES
    for city in CITIES:
        tenant = config.get(city)
        assert set(tenant.settings["letterhead"]) >= {"authority", "street", "postcode_city", "signature_name"}
        assert tenant.settings["mail"]["from_address"].endswith(".example")
        assert {"steueramt", "gewerbeamt", "strassenverkehr", "poststelle"} <= set(tenant.settings["departments"])
        assert "{seq" in tenant.settings["kasse"]["kassenzeichen_pattern"]
        for model in MODELS:
            stadt = config.case_settings(city, model)
            assert stadt["id"] == city and stadt["abteilungen"] and stadt["bearbeitungsfrist_tage"] > 0
        hund = config.case_settings(city, "hundesteuer-anmeldung")
        assert 0 < hund["erster_hund"] < hund["weiterer_hund"] < hund["gefaehrlicher_hund"]
        park = config.case_settings(city, "bewohnerparkausweis")
        assert park["zonen"] and park["gebuehr_jahr"] > 0 and park["zahlungsfrist_tage"] == 14
    assert config.case_settings("marburg", "some-other-model") is None  # models without settings get none
    rates = {c: config.case_settings(c, "hundesteuer-anmeldung")["erster_hund"] for c in CITIES}
    assert len(set(rates.values())) == 5, "each city has its own rates"


@pytest.mark.parametrize("extra,replace,message", [
    ("", ('finanzamt = "Finanzamt Marburg-Biedenkopf"\n', ''),
     r"\[tenants.marburg\].processes.gewerbeanmeldung.empfangsstellen: missing: finanzamt"),
    ("", ('erster_hund = 90.00', 'erster_hund = "neunzig"'), r"'erster_hund' .* must be a number"),
    ("", ('kassenzeichen_pattern = "5.{year}.{seq:07}"', 'kassenzeichen_pattern = "5.{year}"'),
     r"\[tenants.marburg\].kasse: 'kassenzeichen_pattern' must contain \{seq\}"),
    ("", ('signature_role = "Im Auftrag"', 'signatur = "x"'),
     r"\[tenants.marburg\].letterhead: unknown key 'signatur'"),
    ("", ('from_address = "ozg@marburg.ozgflow.example"', 'from_address = "a@b.example"\nsmtp_port = "25"'),
     r"\.mail: 'smtp_port' must be a whole number"),
    ("", ('"Biegenstraße", "Gutenbergstraße"', '"Markt", "Gutenbergstraße"'), r"street 'Markt' is in zone '1' as well"),
    ('\n[tenants.marburg.processes.digitaler-briefkasten]\nabteilung = "bauamt"\n', None,
     r"'abteilung' 'bauamt' is not one of the tenant's departments"),
    ("", ('faelligkeiten = ["02-15", "05-15", "08-15", "11-15"]', 'faelligkeiten = ["15.02."]'),
     r"'faelligkeiten' .* must be a list of dates"),
    ("", ('target = "file"', 'target = "sap"'), r"unknown treasury target 'sap'"),
])
def test_a_mistake_names_the_file_and_the_key(tmp_path, extra, replace, message):
    path = with_file(tmp_path, extra, replace)
    with pytest.raises(ConfigError, match=message) as caught:
        load_tenants(path)
    assert str(path) in str(caught.value)


def test_a_sixth_city_without_its_zones_is_refused_naming_what_is_missing(tmp_path):
    text = KASSEL[:KASSEL.index("[tenants.kassel.processes.bewohnerparkausweis.zonen.K1]")]
    with pytest.raises(ConfigError, match=r"\[tenants.kassel\].processes.bewohnerparkausweis: 'zonen' is "
                                          r"missing \(zones: \[zonen.<key>\] name, strassen\)"):
        load_tenants(with_file(tmp_path, text))
    # a city that does not offer the service needs no settings for it (its destination takes Hundesteuer only)
    only_dogs = text + ('\n[[tenants.kassel.destinations]]\nid = "5b1f0c2e-8d3a-4c6b-9e7f-0a1b2c3d4e60"\n'
                        'services = ["99102013104000"]\nclient_id = "ozgflow-kassel"\nclient_secret = "x"\n')
    assert load_tenants(with_file(tmp_path, only_dogs)).case_settings("kassel", "hundesteuer-anmeldung")


@pytest.fixture
def kassel_rt(db_url, tmp_path):
    runtime = make_runtime(db_url, tmp_path / "var", tenants=load_tenants(with_file(tmp_path, KASSEL)))
    deploy(runtime, bundles_from_paths([ROOT / "processes"]))
    yield runtime
    runtime.close()


def test_a_sixth_city_is_configuration_only(kassel_rt):
    """Kassel: rates, zones, departments and the default Kassenzeichen pattern from the file; models unchanged."""
    hund = example("hundesteuer-anmeldung", "vollstaendig-marburg")
    hund["tenant"] = "kassel"
    del hund["expect"]["data"], hund["expect"]["data_contains"], hund["expect"]["treasury"]
    case = run_example(kassel_rt, "hundesteuer-anmeldung", hund, name="kassel")
    assert case["data"]["jahressteuer"] == 120.0 and case["data"]["steuersatz"] == "erster Hund"
    assert case["data"]["kassenzeichen"] == "kassel-2025-000001"  # [defaults.kasse] pattern
    assert case["aktenzeichen"].startswith("KS-022.31-2025-")
    record = json.loads((kassel_rt.settings.var_dir / "kasse" / "kassel" / "kassel-2025-000001.json").read_text())
    assert record["amount_cents"] == 12000 and record["tenant"] == "kassel" and record["case_id"] == case["id"]

    park = example("bewohnerparkausweis", "bezahlt-wetzlar")
    park["tenant"] = "kassel"
    park["data"]["antragsteller"]["anschrift"]["strasse"] = "Goethestr."
    park["data"]["bewohnerparkzone"] = "Zone K1"
    park["metadata"].pop("paymentInformation")
    park["steps"] = [{"task": "Task_AntragPruefen", "user": "kim", "data": {"entscheidung": "erteilen"}},
                     {"jobs": True}]
    park["expect"] = {"state": "waiting", "data": {"zone": "K1", "gebuehr": 30.7, "bezahlt": False}}
    run_example(kassel_rt, "bewohnerparkausweis", park, name="kassel-park")


def test_the_city_settings_cannot_come_from_the_application(kassel_rt):
    data = example("hundesteuer-anmeldung", "offen-limburg")["data"]
    data["stadt"] = {"id": "kassel", "erster_hund": 0.0, "weiterer_hund": 0.0, "gefaehrlicher_hund": 0.0}
    [started] = start_case(kassel_rt, "hundesteuer-anmeldung", "limburg", data)
    case = get_case(kassel_rt, started["id"])
    assert case["data"]["stadt"]["id"] == "limburg" and case["data"]["steuer_berechnet"] == 84.0


def test_triage_hands_the_case_to_the_groups_of_the_chosen_department(kassel_rt):
    [started] = start_case(kassel_rt, "digitaler-briefkasten", "kassel", {"anliegen": "Frage"})
    [task] = list_tasks(kassel_rt, case_id=started["id"])
    assert task["element_id"] == "Task_Sichten" and task["groups"] == ["posteingang"]
    from engine.cases import complete_task

    complete_task(kassel_rt, task["id"], "pia", {"abteilung": "Ordnungsamt"})  # Kassel's name for gewerbeamt
    from engine.jobs import Worker

    Worker(kassel_rt).run_due()  # the Eingangsbestätigung (no reply channel: a Postversand task)
    tasks = {t["element_id"]: t for t in list_tasks(kassel_rt, case_id=started["id"])}
    complete_task(kassel_rt, tasks["Send_Eingangsbestaetigung_Postversand"]["id"], "post", {})
    [work] = list_tasks(kassel_rt, case_id=started["id"])
    assert work["element_id"] == "Task_Bearbeiten" and work["groups"] == ["gewerbe"]


def test_submissions_go_to_their_model_and_anything_else_to_the_generic_intake(kassel_rt, db_url, tmp_path):
    with Lean.transaction(kassel_rt.db, readonly=True) as db:
        assert _process_for(kassel_rt, db, "giessen", "99050012104000") == "gewerbeanmeldung"
        assert _process_for(kassel_rt, db, "wetzlar", "99108001001000") == "bewohnerparkausweis"
        assert _process_for(kassel_rt, db, "marburg", "99102013104000") == "hundesteuer-anmeldung"
        assert _process_for(kassel_rt, db, "marburg", "99000000000000") == "digitaler-briefkasten"
    only_intake = make_runtime(db_url.replace("ozgflow.sqlite", "other.sqlite") if "sqlite" in db_url else db_url,
                               tmp_path / "other")
    if "sqlite" in db_url:
        deploy(only_intake, bundles_from_paths([ROOT / "processes" / "digitaler-briefkasten"]))
        with Lean.transaction(only_intake.db, readonly=True) as db:  # bound, but its model is not deployed
            assert _process_for(only_intake, db, "giessen", "99050012104000") == "digitaler-briefkasten"
    only_intake.close()


# --- the treasury -------------------------------------------------------------------------------------------


def record(**changes):
    base = {"kassenzeichen": "X-1", "tenant": "marburg", "aktenzeichen": "MR-1", "case_id": 1, "process_id": "p",
            "debtor": {"name": "A B", "address": ""}, "amount_cents": 100, "currency": "EUR", "purpose": "Gebühr",
            "due_dates": ["2025-07-01"]}
    return {**base, **changes}


@pytest.mark.parametrize("changes,message", [
    ({"amount_cents": 1.5}, "amount_cents must be a whole number"),
    ({"currency": "USD"}, "currency must be EUR"),
    ({"debtor": {"name": " "}}, "debtor.name is missing"),
    ({"due_dates": ["1.7.2025"]}, "is not YYYY-MM-DD"),
    ({"due_dates": []}, "at least one date"),
])
def test_incomplete_records_are_refused_naming_the_field(changes, message):
    with pytest.raises(TreasuryError, match=message):
        check_record(record(**changes))
    missing = record()
    del missing["purpose"]
    with pytest.raises(TreasuryError, match="lacks purpose"):
        check_record(missing)


def test_file_treasury_writes_once_and_never_overwrites(tmp_path):
    target = FileTreasury(tmp_path / "kasse")
    where = target.hand_over(record())
    assert json.loads(open(where).read())["kassenzeichen"] == "X-1"
    assert target.hand_over(record()) == where  # the same record again: no error, nothing new
    with pytest.raises(TreasuryError, match="exists with other content"):
        target.hand_over(record(amount_cents=200))
    with pytest.raises(TreasuryError, match="not a usable Kassenzeichen"):
        target.hand_over(record(kassenzeichen="..."))
    assert [p.name for p in (tmp_path / "kasse").glob("*.json")] == ["X-1.json"]


def test_due_dates():
    from datetime import date

    today = date(2025, 8, 15)
    assert due_dates_from(today, due_in_days=14) == ["2025-08-29"]
    assert due_dates_from(today, recurring=["02-15", "08-15", "11-15"]) == ["2025-11-15", "2026-02-15", "2026-08-15"]
    assert due_dates_from(today, due_dates=["2025-09-01"], due_in_days=3) == ["2025-09-01"]


def test_sollstellung_is_idempotent_per_call_and_numbers_run_per_tenant_and_year(kassel_rt, tmp_path):
    from connectors.services import CaseContext
    from connectors.treasury import sollstellung

    [one] = start_case(kassel_rt, "digitaler-briefkasten", "marburg", {})
    [two] = start_case(kassel_rt, "digitaler-briefkasten", "wetzlar", {})
    args = {"amount": "26.005", "purpose": "Gebühr", "debtor_name": "A B", "due_in_days": 14}
    first = sollstellung(CaseContext(kassel_rt, one["id"], "marburg"), idempotency_key="k1", **args)
    again = sollstellung(CaseContext(kassel_rt, one["id"], "marburg"), idempotency_key="k1", **args)
    other = sollstellung(CaseContext(kassel_rt, one["id"], "marburg"), idempotency_key="k2", **args)
    wetzlar = sollstellung(CaseContext(kassel_rt, two["id"], "wetzlar"), idempotency_key="k1", **args)
    assert first == again and first["amount_cents"] == 2601
    assert re.fullmatch(r"5\.\d{4}\.0000001", first["kassenzeichen"]) and other["kassenzeichen"].endswith("0000002")
    assert wetzlar["kassenzeichen"].startswith("WZ-") and wetzlar["kassenzeichen"].endswith("-000001")
    files = sorted(p.name for p in (kassel_rt.settings.var_dir / "kasse" / "marburg").glob("*.json"))
    assert len(files) == 2
    # the treasury holds a number the counter has not reached yet (a database reset): it is skipped, not reused
    taken = other["kassenzeichen"].replace("0000002", "0000003")
    FileTreasury(kassel_rt.settings.var_dir / "kasse" / "marburg").hand_over(record(kassenzeichen=taken))
    third = sollstellung(CaseContext(kassel_rt, one["id"], "marburg"), idempotency_key="k3", **args)
    assert third["kassenzeichen"].endswith("0000004")


def test_kasse_sollstellung_needs_a_background_call_and_the_case_records_it(kassel_rt):
    from bpmn_snippets import with_step

    from engine.models import Bundle

    step = """    <bpmn:serviceTask id="Step" name="Kasse">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="kasse_sollstellung" resultVariable="soll">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="amount" type="any" value="10" />
            <spiffworkflow:parameter id="purpose" type="any" value="'x'" />
            <spiffworkflow:parameter id="debtor_name" type="any" value="'y'" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:serviceTask>"""
    deploy(kassel_rt, [Bundle({"inline.bpmn": with_step(step, pid="inline")})])
    [started] = start_case(kassel_rt, "inline", "marburg", {})
    assert started["state"] == "error"
    assert "kasse_sollstellung' needs its case and runs only as a background call" in started["error"]
    assert not (kassel_rt.settings.var_dir / "kasse" / "marburg").exists()
    # the shipped model calls it in the background: history and data record the hand-over
    case = run_example(kassel_rt, "gewerbeanmeldung", example("gewerbeanmeldung", "zahlung-marburg"), name="z")
    calls = [h for h in case["history"] if h["action"] == "service_called" and h["element_id"] == "Service_Kasse"]
    assert calls and calls[0]["new"]["operation"] == "kasse_sollstellung"
    assert case["data"]["sollstellung"]["kassenzeichen"] == case["data"]["kassenzeichen"]


def test_the_shipped_file_is_also_valid_when_copied(tmp_path):
    shutil.copy(SHIPPED, tmp_path / "t.toml")
    assert load_tenants(tmp_path / "t.toml").get("fulda").settings["kasse"]["kassenzeichen_pattern"]


def test_tenants_json_shows_the_settings_but_no_secret():
    from click.testing import CliRunner

    from ozgflow.cli import main

    result = CliRunner().invoke(main, ["tenants", "--json"], env={"OZGFLOW_TENANTS": str(SHIPPED)})
    assert result.exit_code == 0, result.output
    cities = {t["id"]: t for t in json.loads(result.output)}
    fulda = cities["fulda"]
    assert fulda["aktenzeichen_pattern"].startswith("FD-") and fulda["aktenplan"]
    assert fulda["settings"]["processes"]["hundesteuer-anmeldung"]["gefaehrlicher_hund"] == 660.0
    assert fulda["settings"]["letterhead"]["authority"] == "Stadt Fulda"
    assert "secret" not in result.output.replace("client_secret_env", "")


def test_letters_see_the_letterhead_but_not_the_payment_secret():
    from engine.letters import context

    tenant = load_tenants(SHIPPED).get("wetzlar")
    ctx = context(tenant, {"id": 1}, {}, "x")
    assert ctx["tenant"]["letterhead"]["street"] == "Ernst-Leitz-Straße 30"
    assert not [k for k in ctx["tenant"] if "secret" in k] and "mail" not in ctx["tenant"]


def test_the_city_processing_deadline_is_the_due_date_of_the_first_check(kassel_rt):
    from datetime import UTC, datetime, timedelta

    from engine.examples import Clock

    kassel_rt.clock = Clock(datetime(2025, 6, 2, 8, 0, tzinfo=UTC))
    data = example("hundesteuer-anmeldung", "offen-limburg")["data"]
    due = {}
    for city in ("marburg", "kassel"):  # Marburg: [tenants.marburg.ikz] processing_days 30; Kassel: none, P14D
        [started] = start_case(kassel_rt, "hundesteuer-anmeldung", city, data)
        [task] = list_tasks(kassel_rt, case_id=started["id"])
        due[city] = datetime.fromisoformat(task["due"].replace("Z", "+00:00")) - kassel_rt.clock()
    assert due == {"marburg": timedelta(days=30), "kassel": timedelta(days=14)}
