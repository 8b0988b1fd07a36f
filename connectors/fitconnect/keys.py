"""Key files of the FIT-Connect destinations, and demo keys for those that have none.

Every destination has two RSA-4096 key pairs, stored as JWK files in its key folder, by default
``<var>/keys/<destination-id>/`` (a tenant file can name another folder with ``keys = "…"``; a relative
path is taken from ``<var>``)::

    <var>/keys/<destination-id>/
        encryption.public.jwk.json    RSA-OAEP-256, key_ops [wrapKey]    senders encrypt to it
        encryption.private.jwk.json   RSA-OAEP-256, key_ops [unwrapKey]  the pickup decrypts with it
        signing.public.jwk.json       PS512, key_ops [verify]            the delivery service checks events
        signing.private.jwk.json      PS512, key_ops [sign]              the pickup signs accept/reject

The local FIT-Connect server reads only the two public files; the private ones belong to the receiving
side (file mode 0600). ``ensure_demo_keys`` (called by ``ozgflow init``) fills the gaps: the three sample
destinations (Marburg, Gießen, Wetzlar) get the published test keys of the sample submissions (from
``demo/keys/``, so the encrypted samples decrypt), every other destination a freshly generated pair.
Existing files are never overwritten. Key ids are the RFC 7638 thumbprints of generated keys.
"""

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from jwcrypto import jwk

from engine.files import write_atomically

from .crypto import KEY_ALG, SET_ALG, load_key
from .errors import CryptoError

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_KEYS = DEMO_DIR / "keys"

# The destinations of the synthetic sample submissions share one pair of test keys.
SAMPLE_DESTINATIONS = frozenset({
    "3f2b9c1e-6d4a-4e8f-9a1b-2c3d4e5f6a71",  # Marburg
    "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c02",  # Gießen
    "9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c03",  # Wetzlar
})

# purpose -> (alg, use, private key_ops, public key_ops, file stem of the sample keys)
PAIRS = {
    "encryption": (KEY_ALG, "enc", ["unwrapKey"], ["wrapKey"], "destination_encryption"),
    "signing": (SET_ALG, "sig", ["sign"], ["verify"], "destination_signing"),
}


@dataclass(frozen=True)
class KeyFolder:
    """The key folder of one destination; each ``*_key`` method loads one JWK (CryptoError if absent)."""

    path: Path

    def file(self, purpose, private):
        return self.path / f"{purpose}.{'private' if private else 'public'}.jwk.json"

    def has(self, purpose, private=False):
        return self.file(purpose, private).is_file()

    def load(self, purpose, private=False):
        f = self.file(purpose, private)
        if not f.is_file():
            raise CryptoError(f"no {purpose} key at {f} (run `ozgflow init` to create demo keys)")
        return load_key(f)

    def encryption_public_key(self):
        return self.load("encryption")

    def encryption_private_key(self):
        return self.load("encryption", private=True)

    def signing_public_key(self):
        return self.load("signing")

    def signing_private_key(self):
        return self.load("signing", private=True)


def key_folder(var_dir, destination):
    """The KeyFolder of ``destination`` (anything with ``id`` and ``keys_dir``, e.g. engine.tenants.Destination)."""
    var_dir = Path(var_dir)
    explicit = getattr(destination, "keys_dir", None)
    if explicit:
        return KeyFolder(var_dir / explicit if not Path(explicit).is_absolute() else Path(explicit))
    return KeyFolder(var_dir / "keys" / destination.id)


def ensure_demo_keys(var_dir, tenant_config, key_size=4096):
    """Write the key pairs every destination of ``tenant_config`` lacks; what was done, one dict per pair.

    Sample destinations get copies of the published test keys, the others generated keys of ``key_size``
    bits (4096 as FIT-Connect requires; tests may pass less to save time). A half pair (one file of two)
    is an error: a private key without its public half must not be replaced silently."""
    report = []
    for destination in tenant_config.destinations:
        folder = key_folder(var_dir, destination)
        for purpose in PAIRS:
            have_private, have_public = folder.has(purpose, True), folder.has(purpose, False)
            if have_private and have_public:
                continue
            if have_private or have_public:
                raise CryptoError(f"{folder.path}: only one half of the {purpose} key pair exists; "
                                  "restore the other half or remove it")
            if destination.id in SAMPLE_DESTINATIONS:
                private, public = _sample_pair(purpose)
                action = "copied sample test keys"
            else:
                private, public = _demo_pair(destination.id, purpose, key_size)
                action = f"generated RSA-{key_size}"
            _write_json(folder.file(purpose, True), private, secret=True)
            _write_json(folder.file(purpose, False), public, secret=False)
            report.append({"destination": destination.id, "purpose": purpose, "kid": public["kid"],
                           "action": action, "folder": str(folder.path)})
    return report


def generate_pair(purpose, key_size=4096):
    """A new RSA key pair for ``purpose`` ("encryption" or "signing") as (private dict, public dict)."""
    alg, use, private_ops, public_ops, _ = PAIRS[purpose]
    key = jwk.JWK.generate(kty="RSA", size=key_size)
    kid = key.thumbprint()
    private = {**key.export_private(as_dict=True), "kid": kid, "alg": alg, "use": use, "key_ops": private_ops}
    public = {**key.export_public(as_dict=True), "kid": kid, "alg": alg, "use": use, "key_ops": public_ops}
    return private, public


@functools.lru_cache(maxsize=64)
def _demo_pair(destination_id, purpose, key_size):
    """A generated demo pair, remembered for the life of the process.

    RSA-4096 generation takes about half a second per key; a test run that initialises many fresh var
    folders would otherwise pay it again and again. Demo keys protect nothing, so the same destination
    getting the same demo key twice in one process costs no safety. Production keys come from FIT-Connect."""
    return generate_pair(purpose, key_size)


def _sample_pair(purpose):
    stem = PAIRS[purpose][4]
    return tuple(json.loads((DEMO_KEYS / f"{stem}.{half}.jwk.json").read_text(encoding="utf-8"))
                 for half in ("private", "public"))


def ensure_signing_key(path, key_size=4096):
    """The PS512 signing key (private JWK) stored at ``path``, generated on first use.

    The local FIT-Connect server signs its own events with it (its public half is served as
    ``/.well-known/jwks.json``)."""
    path = Path(path)
    if not path.is_file():
        private, _ = generate_pair("signing", key_size)
        _write_json(path, private, secret=True)
    return load_key(path)


def _write_json(path, document, secret):
    """Write atomically (a half-written key file is worse than none); private keys readable by the owner only."""
    write_atomically(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"), mode=0o600 if secret else 0o644)
