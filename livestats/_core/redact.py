"""Scrubbing secrets out of text that came from a vendor or a gateway.

A gateway that refuses a request may echo it: its URL (with the UserSig or the
sign in the query), its headers (``Authorization``), its body. That text reaches
error messages and page titles, so before any error leaves the engine every
secret the client knows, and every credential derived from one, is replaced by
``[secure]`` in all of its text fields; the same goes for the forms an echo may
take (URL-encoded, JSON-escaped, lower- or upper-case hex).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import quote, quote_plus

from livestats._core.http import REDACTED
from livestats.errors import LiveStatsError

__all__ = ["Redactor"]

E = TypeVar("E", bound=LiveStatsError)

#: Text fields of a LiveStatsError that may carry vendor text.
_FIELDS = ("message", "vendor_message", "request_id")
#: Shorter values are not scrubbed: they would blank out ordinary words.
_MIN_SECRET = 6
#: A piece of a secret this long is scrubbed too, wherever it stands: vendor text is
#: cut to length somewhere (a page's first KB, a gateway's own limit), and a cut can
#: fall inside a secret.
_PIECE = 12
#: Vendor text in an error is cut to this many characters, after scrubbing.
MAX_VENDOR_TEXT = 300


def _forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), secret.replace("/", "\\/")}
    if secret.isalnum():
        forms |= {secret.lower(), secret.upper()}
    return {form for form in forms if len(form) >= _MIN_SECRET}


@functools.lru_cache(maxsize=256)
def _expanded(secret: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """Every form of ``secret`` (longest first) and every long piece of one, computed once.

    A client's per-request secrets (a UserSig) repeat for hours: the cache makes a
    refused answer cost a few lookups, not a recomputation.
    """
    forms = tuple(sorted(_forms(secret), key=len, reverse=True)) if secret else ()
    return forms, _pieces(forms)


class Redactor:
    """Replaces known secrets, whole or in pieces, in every form an echo may show, by [secure]."""

    __slots__ = ("_pieces", "_static")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        pieces: set[str] = set()
        for secret in secrets:
            more, parts = _expanded(secret)
            forms.update(more)
            pieces.update(parts)
        # Longest first, so a secret that contains another is replaced whole.
        self._static = tuple(sorted(forms, key=len, reverse=True))
        self._pieces = frozenset(pieces)

    def __repr__(self) -> str:
        return f"<Redactor {len(self._static)} forms of secrets>"

    def text(self, text: str, extra: Iterable[str] = ()) -> str:
        """``text`` with every secret (``extra`` too) and every long piece of one scrubbed."""
        piece_sets = [self._pieces]
        for secret in extra:
            forms, pieces = _expanded(secret)
            for form in forms:
                text = text.replace(form, REDACTED)
            piece_sets.append(pieces)
        for form in self._static:
            text = text.replace(form, REDACTED)
        return _scrub_pieces(text, piece_sets)

    def error(self, err: E, extra: Iterable[str] = ()) -> E:
        """``err`` itself when it shows no secret, else a scrubbed copy (the cause is dropped).

        Vendor text is cut to :data:`MAX_VENDOR_TEXT` characters once scrubbed.
        """
        extra = tuple(extra)
        changes = {}
        for name in _FIELDS:
            value = getattr(err, name, None)
            if isinstance(value, str):
                clean = self.text(value, extra)
                if name == "vendor_message" and len(clean) > MAX_VENDOR_TEXT:
                    clean = clean[: MAX_VENDOR_TEXT - 1] + "…"
                if clean != value:
                    changes[name] = clean
        if not changes:
            return err
        scrubbed = err._evolve(**changes)
        scrubbed.__cause__ = None
        scrubbed.__suppress_context__ = True
        return scrubbed


def _pieces(forms: Iterable[str]) -> frozenset[str]:
    return frozenset(
        form[i : i + _PIECE]
        for form in forms
        if len(form) >= _PIECE
        for i in range(len(form) - _PIECE + 1)
    )


def _scrub_pieces(text: str, piece_sets: list[frozenset[str]]) -> str:
    """Replace every run of text made of overlapping secret pieces by one ``[secure]``."""
    sets = [pieces for pieces in piece_sets if pieces]
    if not sets or len(text) < _PIECE:
        return text
    spans: list[list[int]] = []
    for i in range(len(text) - _PIECE + 1):
        window = text[i : i + _PIECE]
        if any(window in pieces for pieces in sets):
            if spans and i <= spans[-1][1]:
                spans[-1][1] = i + _PIECE
            else:
                spans.append([i, i + _PIECE])
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(REDACTED)
        last = end
    out.append(text[last:])
    return "".join(out)
