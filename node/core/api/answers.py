"""Errors of the core's sharing path as API answers, for every endpoint that shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from federation.consent import UnknownFieldPath
from node.core.api.framework import ApiError, FieldProblem, invalid
from node.core.rooms import PairRoomError
from node.core.runtime import CoalitionNotChosen
from node.core.sharing import (
    AlreadyRetracted,
    NothingToRetract,
    ShareRefused,
    UnknownRecipient,
)


@contextmanager
def sharing_answers() -> Iterator[None]:
    """Sharing refusals as API errors (paths, org ids and policy terms only, never values)."""
    try:
        yield
    except UnknownRecipient as error:
        raise invalid([FieldProblem(field="body.recipients", problem=str(error))],
                      f"recipient {error.org_id} {error.reason}") from None
    except UnknownFieldPath as error:
        raise invalid([FieldProblem(field="body.fields", problem=str(error))]) from None
    except ShareRefused as error:
        problems = [FieldProblem(field=refusal.path, problem=f"{org_id}: {refusal.reason}")
                    for org_id, refused in error.refusals.items() for refusal in refused.refusals]
        summary = ", ".join(error.paths) or "the whole case"
        raise ApiError(409, "consent_refused",
                       f"consent does not allow sharing {summary}; nothing was sent",
                       problems) from None
    except AlreadyRetracted:
        raise ApiError(409, "retracted", "this case was retracted; it is not shared again") \
            from None
    except NothingToRetract:
        raise ApiError(409, "not_shared", "this case was never shared; nothing to retract") \
            from None
    except PairRoomError as error:
        raise ApiError(503, "homeserver_unavailable", str(error)) from None
    except CoalitionNotChosen as error:
        raise invalid([FieldProblem(field="body.coalition", problem=str(error))],
                      str(error)) from None
