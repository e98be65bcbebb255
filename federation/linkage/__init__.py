"""Privacy-preserving record linkage for case de-duplication (docs/architecture.md §12): the pure
core.

Build the encodings of a draft case with :func:`encode_case_features` under the coalition
:class:`LinkageKey`, send :meth:`Encoding.wire_fields` sealed in a ``minga.dedup-query/1``, and on
the other side decode with :meth:`Encoding.from_wire`, look it up in an :class:`EncodingIndex` of
the member's own cases, and answer with :func:`score_band` of the best match. Decision records:
``docs/decisions/0004-dedup-encoding.md`` (the encoding), ``0020-name-romanisation.md`` (scheme
v2: every script, naming-culture rules). Scheme versions and name tables: ``tables``.
"""

from federation.linkage.encoding import (
    CaseFeatures,
    Encoding,
    FeatureError,
    MalformedEncodingError,
    encode_case_features,
)
from federation.linkage.index import EncodingIndex, Match
from federation.linkage.keys import KEY_BYTES, LinkageKey, LinkageKeyError
from federation.linkage.scoring import (
    HIGH,
    LOW,
    MEDIUM,
    KeyMismatchError,
    Score,
    ScoreBand,
    compare,
    score_band,
)
from federation.linkage.tables import SCHEME, SCHEME_V1, SCHEME_V2, SCHEMES

__all__ = [
    "HIGH",
    "KEY_BYTES",
    "LOW",
    "MEDIUM",
    "SCHEME",
    "SCHEMES",
    "SCHEME_V1",
    "SCHEME_V2",
    "CaseFeatures",
    "Encoding",
    "EncodingIndex",
    "FeatureError",
    "KeyMismatchError",
    "LinkageKey",
    "LinkageKeyError",
    "MalformedEncodingError",
    "Match",
    "Score",
    "ScoreBand",
    "compare",
    "encode_case_features",
    "score_band",
]
