"""connectors.fitconnect.crypto against the shared wire-format samples (../shared/ozg/fit-connect).

The encrypted samples must decrypt with the demo keys shipped in connectors/fitconnect/demo/keys, their
hashes and authentication tags must agree with the metadata and the delivery service's events, and
every signed sample must verify — otherwise our crypto does not speak FIT-Connect.
"""

import base64
import json
from pathlib import Path

import pytest

from connectors.fitconnect import crypto
from connectors.fitconnect.errors import CryptoError
from connectors.fitconnect.keys import DEMO_KEYS, generate_pair

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "ozg" / "fit-connect"
CASES = ["01_hundesteuer_anmeldung_marburg", "02_gewerbeanmeldung_giessen", "03_bewohnerparkausweis_wetzlar"]

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/ozg/fit-connect is not here")


def demo_key(name):
    return crypto.load_key(DEMO_KEYS / f"{name}.jwk.json")


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES)
def test_encrypted_samples_decrypt_and_match_their_metadata(case):
    enc = SAMPLES / case / "encrypted"
    sub = read_json(enc / "GET_v2_submissions_submissionId.response.json")
    key = demo_key("destination_encryption.private")
    metadata = json.loads(crypto.decrypt(sub["encryptedMetadata"], key))
    assert metadata == read_json(SAMPLES / case / "metadata.json")
    data = crypto.decrypt(sub["encryptedData"], [key])
    assert data == (SAMPLES / case / "data.json").read_bytes()
    assert crypto.hash_matches(data, metadata["contentStructure"]["data"]["hash"]["content"])
    parts = {aid: (enc / f"attachment_{aid}.jwe").read_text().strip() for aid in sub["attachments"]}
    for entry in metadata["contentStructure"]["attachments"]:
        content = crypto.decrypt(parts[entry["attachmentId"]], key)
        assert crypto.hash_matches(content, entry["hash"]["content"])
        assert content == (SAMPLES / case / "attachments" / entry["filename"]).read_bytes()

    # The delivery service's event log verifies with its JWKS; submit-submission names the parts' tags.
    service_keys = [crypto.load_key(json.dumps(k)) for k in read_json(SAMPLES / "keys" / "zustelldienst_jwks.json")
                    ["keys"]]
    log = [crypto.verify_set(t, service_keys) for t in read_json(enc / "GET_v2_cases_caseId_events.response.json")
           ["eventLog"]]
    submitted = [payload for event, payload in map(crypto.event_of, log) if event == crypto.SUBMIT_SUBMISSION]
    tags = crypto.authentication_tags(sub["encryptedMetadata"], sub["encryptedData"], parts)
    assert submitted == [{"authenticationTags": tags}]

    # The sample accept SET verifies with the destination's public signing key and carries the same tags.
    accept = crypto.verify_set((enc / "accept-submission.set.jws").read_text().strip(),
                               demo_key("destination_signing.public"))
    assert accept == read_json(enc / "accept-submission.set.payload.json")
    assert crypto.event_of(accept) == (crypto.ACCEPT_SUBMISSION, {"authenticationTags": tags})


@pytest.mark.parametrize("case", CASES)
def test_sample_callbacks_verify(case):
    secret = read_json(SAMPLES / "keys" / "test-config.json")["callbackSecret"]
    request = read_json(SAMPLES / case / "encrypted" / "callback.request.json")
    headers = request["headers"]
    stamp = int(headers["callback-timestamp"])
    crypto.verify_callback(secret, headers["callback-timestamp"], request["body"], headers["callback-authentication"],
                           now=stamp + 10)
    assert crypto.callback_signature(secret, stamp, request["body"]) == headers["callback-authentication"]
    with pytest.raises(CryptoError, match="away from now"):  # a replay an hour later
        crypto.verify_callback(secret, headers["callback-timestamp"], request["body"],
                               headers["callback-authentication"], now=stamp + 3600)
    with pytest.raises(CryptoError, match="does not match"):
        crypto.verify_callback(secret, headers["callback-timestamp"], request["body"] + " ",
                               headers["callback-authentication"], now=stamp)


def test_encrypt_round_trip_and_tampering():
    public, private = demo_key("destination_encryption.public"), demo_key("destination_encryption.private")
    token = crypto.encrypt("Grüße".encode(), public, cty="application/json")
    header = crypto.jwe_header(token)
    assert header == {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "test-dest-enc-0001", "cty": "application/json"}
    assert crypto.decrypt(token, private) == "Grüße".encode()
    segments = token.split(".")
    segments[3] = segments[3][:-2] + ("AA" if segments[3][-2:] != "AA" else "BA")
    with pytest.raises(CryptoError, match="cannot decrypt"):
        crypto.decrypt(".".join(segments), private)
    other, _ = generate_pair("encryption", 2048)
    with pytest.raises(CryptoError, match="no decryption key with kid"):
        crypto.decrypt(token, crypto.load_key(json.dumps(other)))
    with pytest.raises(CryptoError, match="segments"):
        crypto.decrypt("a.b.c", private)
    with pytest.raises(CryptoError, match="characters"):
        crypto.decrypt(token, private, max_chars=100)


def test_sets_are_checked_strictly():
    signing, verifying = demo_key("destination_signing.private"), demo_key("destination_signing.public")
    token = crypto.make_set(signing, issuer="3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71", submission_id="s", case_id="c",
                            event=crypto.REJECT_SUBMISSION, payload={"problems": []}, now=1741598130, jti="j")
    assert crypto.set_header(token) == {"alg": "PS512", "kid": "test-dest-sig-0001-verify", "typ": "secevent+jwt"}
    claims = crypto.verify_set(token, verifying)
    assert claims == {"$schema": crypto.SET_SCHEMA, "jti": "j", "iss": "3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71",
                      "iat": 1741598130, "sub": "submission:s", "txn": "case:c",
                      "events": {crypto.REJECT_SUBMISSION: {"problems": []}}}
    # an unsigned token (alg none) and one signed by someone else are refused
    head, body, _ = token.split(".")
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"secevent+jwt"}').decode().rstrip("=")
    with pytest.raises(CryptoError, match="alg='none'"):
        crypto.verify_set(f"{none_head}.{body}.", verifying)
    stranger, _ = generate_pair("signing", 2048)
    forged = crypto.make_set(crypto.load_key(json.dumps({**stranger, "kid": "test-dest-sig-0001-verify"})),
                             issuer="x", submission_id="s", case_id="c", event=crypto.ACCEPT_SUBMISSION)
    with pytest.raises(CryptoError, match="does not verify"):
        crypto.verify_set(forged, verifying)
    with pytest.raises(CryptoError, match="no verification key"):
        crypto.verify_set(token, [])
