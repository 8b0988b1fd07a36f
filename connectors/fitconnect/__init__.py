"""The OZG mailbox: FIT-Connect Submission API v2.

- ``crypto``      JWE parts, signed events (SET), SHA-512, callback HMAC — on jwcrypto
- ``keys``        destination key files under ``var/keys/`` and demo keys for ``ozgflow init``
- ``client``      HTTP clients: ``Receiver`` (pickup) and ``Sender`` (online service, demos, tests)
- ``application`` decrypted application files (demo data) -> parts to send
- ``server``      the local FIT-Connect server (``ozgflow mailbox-server``) with its own store (``store``)
- ``errors``      ``MailboxError`` and its subclasses; nothing else escapes this package

Demo data (three synthetic applications, their PDFs, the sample test keys) is in ``demo/``; the metadata
schema in ``schemas/``.
"""
