"""The consent gate's decision, on its own so that both the gate (:mod:`federation.consent`)
and what enforces it (:func:`federation.disclosure.issue`) can use it without importing each
other.

A :class:`ConsentDecision` allows exactly some fields of one case version for one audience;
:func:`federation.disclosure.issue` refuses the claims of a case without one that covers them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from typing import Any, Final

from schemas.fields import split_path

HEADER_CLAIMS: Final = ("record_id", "version", "kind", "schema", "issued_at")
COALITION_CLAIM: Final = "coalition"
"""The coalition a record is shared through, in clear in every token (decision 0032)."""


class DisclosureError(ValueError):
    """Issuing or presenting a record's selective disclosure was refused."""


class ConsentRequired(DisclosureError):
    """Case claims came without a consent decision that allows exactly them."""


_GATE: Final = object()


class ConsentDecision:
    """The gate's permission to disclose ``fields`` of one case version to one audience.

    Only :func:`federation.consent.decide` makes one (through :func:`grant`).
    :func:`federation.disclosure.issue` asks it to
    :meth:`authorise` the claims it is about to sign.
    """

    __slots__ = ("_audience", "_coalition", "_fields", "_header")

    def __init__(
        self, gate: object, *, header: Mapping[str, Any], audience: str, fields: frozenset[str],
        coalition: str | None = None,
    ) -> None:
        if gate is not _GATE:
            raise TypeError("a ConsentDecision is made only by federation.consent.decide")
        self._header = types.MappingProxyType({name: header[name] for name in HEADER_CLAIMS})
        self._audience, self._fields, self._coalition = audience, fields, coalition

    @property
    def record_id(self) -> str:
        return str(self._header["record_id"])

    @property
    def version(self) -> int:
        return int(self._header["version"])

    @property
    def audience(self) -> str:
        return self._audience

    @property
    def fields(self) -> frozenset[str]:
        return self._fields

    @property
    def coalition(self) -> str | None:
        """The coalition the gate decided for (None: no coalition named)."""
        return self._coalition

    def authorise(self, claims: Mapping[str, Any], audience: str | None) -> None:
        """Raise :class:`ConsentRequired` unless ``claims`` are within this decision."""
        if audience != self._audience:
            raise ConsentRequired("the consent decision was made for another audience")
        if any(claims.get(name) != value for name, value in self._header.items()):
            raise ConsentRequired("the consent decision was made for another case version")
        if claims.get(COALITION_CLAIM) != self._coalition:
            raise ConsentRequired("the consent decision was made for another coalition")
        beyond = sorted(_paths_beyond(claims, self._fields))
        if beyond:
            raise ConsentRequired(f"fields beyond the consent decision: {', '.join(beyond)}")


@functools.lru_cache(maxsize=256)
def _arrays_of(fields: frozenset[str]) -> frozenset[str]:
    """The array fields that ``fields`` reach into (``victims`` for ``victims.name``)."""
    return frozenset(split_path(path)[0] for path in fields if "." in path)


def _paths_beyond(claims: Mapping[str, Any], fields: frozenset[str]) -> set[str]:
    """The claim paths in ``claims`` that ``fields`` do not cover (header claims aside)."""
    arrays = _arrays_of(fields)
    beyond: set[str] = set()
    for name, value in claims.items():
        if name in HEADER_CLAIMS or name == COALITION_CLAIM:
            continue
        if name in arrays and isinstance(value, list):
            for element in value:
                if not isinstance(element, dict):
                    beyond.add(name)
                    continue
                beyond.update(path for key in element if (path := f"{name}.{key}") not in fields)
        elif name not in fields:
            beyond.add(name)
    return beyond


def grant(*, header: Mapping[str, Any], audience: str, fields: frozenset[str],
          coalition: str | None = None) -> ConsentDecision:
    """A decision for ``fields`` of the case version in ``header``, shared through
    ``coalition``; only the gate's :func:`federation.consent.decide` calls this, after
    checking consent."""
    return ConsentDecision(_GATE, header=header, audience=audience, fields=fields,
                           coalition=coalition)
