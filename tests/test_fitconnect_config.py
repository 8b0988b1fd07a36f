"""FIT-Connect destinations in the tenant file, ``ozgflow tenants --json``, demo keys, application files."""

import json
import os
import stat

import pytest
from click.testing import CliRunner

from connectors.fitconnect.application import DEMO_APPLICATIONS, load_application
from connectors.fitconnect.crypto import sha512_hex
from connectors.fitconnect.errors import CryptoError, MailboxError
from connectors.fitconnect.keys import DEMO_KEYS, SAMPLE_DESTINATIONS, ensure_demo_keys, key_folder
from engine.config import DEFAULT_TENANTS
from engine.errors import ConfigError
from engine.tenants import load_tenants
from ozgflow.cli import main

SAMPLE_IDS = {"marburg": "3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71", "giessen": "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c02",
              "wetzlar": "9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c03"}


def test_every_tenant_has_a_destination_and_the_samples_keep_their_ids():
    cfg = load_tenants(DEFAULT_TENANTS)
    assert [t.id for t in cfg.tenants.values() if t.destinations] == list(cfg.tenants)
    for tenant, destination_id in SAMPLE_IDS.items():
        assert cfg.get(tenant).destinations[0].id == destination_id
    assert set(SAMPLE_IDS.values()) == SAMPLE_DESTINATIONS
    assert cfg.destination(SAMPLE_IDS["giessen"]).tenant == "giessen"
    assert "destinations" not in cfg.get("marburg").settings
    assert "demo-marburg-secret" not in repr(cfg.get("marburg"))  # secrets stay out of reprs and logs


def test_tenants_json_lists_destinations(tmp_path):
    env = {"OZGFLOW_TENANTS": str(DEFAULT_TENANTS), "OZGFLOW_VAR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["tenants", "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    marburg = doc[0]
    assert {"id", "name", "ags", "destinations"} <= set(marburg)
    client_id = load_tenants(DEFAULT_TENANTS).get("marburg").destinations[0].client_id
    assert marburg["destinations"] == [{"id": SAMPLE_IDS["marburg"],
                                        "services": ["99102013104000", "99050012104000", "99108001001000"],
                                        "client_id": client_id,
                                        "keys": str(tmp_path / "var" / "keys" / SAMPLE_IDS["marburg"])}]
    assert "demo-marburg-secret" not in result.output and "client_secret" not in result.output
    # an explicit key folder (relative to <var>) and the secret from the environment: its name only
    table = ('[[tenants.marburg.destinations]]\nid = "3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71"\nservices = []\n'
             'client_id = "mr-client"\nclient_secret_env = "MR_SECRET"\nkeys = "schluessel/mr"\n')
    env = {"OZGFLOW_TENANTS": str(write_tenants(tmp_path, table)), "OZGFLOW_VAR": str(tmp_path / "var"),
           "MR_SECRET": "s3cret-value"}
    result = CliRunner().invoke(main, ["tenants", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["destinations"] == [
        {"id": SAMPLE_IDS["marburg"], "services": [], "client_id": "mr-client",
         "keys": str(tmp_path / "var" / "schluessel" / "mr"), "client_secret_env": "MR_SECRET"}]
    assert "s3cret-value" not in result.output


def write_tenants(tmp_path, destinations):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.marburg]\nname = "Marburg"\nags = "06534014"\n' + destinations, encoding="utf-8")
    return path


@pytest.mark.parametrize("table,message", [
    ('id = "not-a-uuid"\nservices = []\nclient_id = "c"', "destination UUID"),
    ('id = "3F2B9C1E-6D4A-4E8F-9A1B-2C3D4E5F6A71"\nservices = []\nclient_id = "c"', "lower case"),
    ('id = "3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71"\nservices = ["991"]\nclient_id = "c"', "14-digit"),
    ('id = "3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71"\nservices = []', "client_id"),
])
def test_bad_destinations_are_named(tmp_path, table, message):
    with pytest.raises(ConfigError, match=message):
        load_tenants(write_tenants(tmp_path, f"[[tenants.marburg.destinations]]\n{table}\n"))


def test_destination_secret_from_the_environment(tmp_path):
    table = ('[[tenants.marburg.destinations]]\nid = "3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71"\nservices = []\n'
             'client_id = "c"\nclient_secret_env = "MR_SECRET"\n')
    destination = load_tenants(write_tenants(tmp_path, table)).destinations[0]
    assert destination.secret({"MR_SECRET": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="MR_SECRET"):
        destination.secret({})
    twice = table + table.replace('client_id = "c"', 'client_id = "d"')
    with pytest.raises(ConfigError, match="configured for both"):
        load_tenants(write_tenants(tmp_path, twice))


def test_demo_keys_copy_samples_generate_the_rest_and_never_overwrite(tmp_path):
    cfg = load_tenants(DEFAULT_TENANTS)
    report = ensure_demo_keys(tmp_path, cfg, key_size=2048)
    assert len(report) == 2 * len(cfg.destinations)
    marburg = key_folder(tmp_path, cfg.get("marburg").destinations[0])
    assert marburg.path == tmp_path / "keys" / SAMPLE_IDS["marburg"]
    assert json.loads(marburg.file("encryption", True).read_text()) == json.loads(
        (DEMO_KEYS / "destination_encryption.private.jwk.json").read_text())
    fulda = key_folder(tmp_path, cfg.get("fulda").destinations[0])
    public = json.loads(fulda.file("encryption", False).read_text())
    assert public["alg"] == "RSA-OAEP-256" and public["key_ops"] == ["wrapKey"] and "d" not in public
    assert fulda.signing_private_key().get("key_ops") == ["sign"] and fulda.signing_private_key().has_private
    assert stat.S_IMODE(os.stat(fulda.file("signing", True)).st_mode) == 0o600
    before = fulda.file("signing", True).read_bytes()
    assert ensure_demo_keys(tmp_path, cfg, key_size=2048) == []
    assert fulda.file("signing", True).read_bytes() == before
    fulda.file("signing", False).unlink()
    with pytest.raises(CryptoError, match="only one half"):
        ensure_demo_keys(tmp_path, cfg, key_size=2048)


def test_load_application_fills_in_hashes_and_stays_in_its_folder(tmp_path):
    outgoing = load_application(DEMO_APPLICATIONS[1])
    metadata = json.loads(outgoing.metadata)
    assert outgoing.leika == "99050012104000" and len(outgoing.attachments) == 2
    assert metadata["contentStructure"]["data"]["hash"]["content"] == sha512_hex(outgoing.data)
    original = json.loads(DEMO_APPLICATIONS[1].read_text(encoding="utf-8"))
    assert metadata == original["metadata"]  # the samples' hashes already were the right ones
    evil = {**original, "attachmentFiles": {aid: "../../etc/passwd" for aid in original["attachmentFiles"]}}
    (tmp_path / "evil.json").write_text(json.dumps(evil), encoding="utf-8")
    with pytest.raises(MailboxError, match="leaves the application's folder"):
        load_application(tmp_path / "evil.json")
    (tmp_path / "broken.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(MailboxError, match="not valid JSON"):
        load_application(tmp_path / "broken.json")
