"""Seal or signature of outgoing letters: one interface, so that an e-seal or signature service (e.g. a
qualified electronic seal of the city, eIDAS) can be plugged in without touching the engine.

``engine.dispatch`` passes every rendered letter PDF through ``seal_for(rt).seal(...)`` before it is stored as
the case's document and sent; the sealed bytes are what the citizen gets and what the E-Akte receives. The
default seals nothing. A deployment sets ``rt.letter_seal`` to its own implementation."""

from typing import Protocol


class LetterSeal(Protocol):
    def seal(self, pdf: bytes, *, tenant: str, case_id: int, letter: str) -> bytes:
        """The sealed (or signed) PDF; raise on failure (the letter job retries, nothing is sent unsealed)."""


class NoSeal:
    """The default: letters go out as rendered."""

    def seal(self, pdf, *, tenant, case_id, letter):
        return pdf


def seal_for(rt):
    return getattr(rt, "letter_seal", None) or NoSeal()
