"""Pure parts of the web interface: throttling windows, cookies, redirects, the case form's
rows and payload, the merge patch of an edit, text matching of the search."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import MultiDict

from node.core.store import CaseIndex, StoredCase
from node.core.web.context import field_id
from node.core.web.i18n import formatter
from node.core.web.sessions import set_session_cookie
from node.core.web.throttle import LoginThrottle
from node.features.accounts.auth_pages import safe_next
from node.features.cases.case_form import CaseForm
from node.features.cases.case_search import matches
from node.features.cases.pages import replacement_patch
from schemas.case import Case
from schemas.typology import normalise_label


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_pauses_an_account_then_lets_it_try_again() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, window=60, account_limit=3, address_limit=100)
    for _ in range(3):
        assert throttle.wait_seconds("Ana", "10.0.0.1") == 0
        throttle.failed("Ana", "10.0.0.1")
    assert throttle.wait_seconds("ANA ", "10.0.0.9") == 60  # same account, any address
    assert throttle.wait_seconds("beto", "10.0.0.1") == 0
    clock.now += 59.5
    assert throttle.wait_seconds("ana", None) == 1
    clock.now += 1
    assert throttle.wait_seconds("ana", None) == 0


def test_throttle_pauses_an_address_and_success_clears_the_account() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, window=60, account_limit=3, address_limit=4)
    for name in ("a", "b", "c", "d"):
        throttle.failed(name, "10.0.0.1")
    assert throttle.wait_seconds("e", "10.0.0.1") > 0
    assert throttle.wait_seconds("e", "10.0.0.2") == 0
    throttle.failed("f", "10.0.0.3")
    throttle.failed("f", "10.0.0.4")
    throttle.succeeded("f")
    throttle.failed("f", "10.0.0.5")
    assert throttle.wait_seconds("f", "10.0.0.6") == 0


def test_the_session_cookie_is_secure_over_tls() -> None:
    plain = make_mocked_request("GET", "/")
    for request, secure in ((plain, False), (plain.clone(scheme="https"), True)):
        response = web.Response()
        set_session_cookie(response, request, "token")
        cookie = response.cookies["minga_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert bool(cookie["secure"]) is secure


def test_redirects_after_login_stay_on_this_node() -> None:
    assert safe_next("/cases?country=CO") == "/cases?country=CO"
    for target in (None, "", "https://evil.example/", "//evil.example/x", "/\\evil", "cases"):
        assert safe_next(target) == "/"


def test_field_ids_follow_schema_paths() -> None:
    assert field_id("victims[1].name") == "f-victims-1-name"
    assert field_id("incident_date") == "f-incident_date"


def _post(**fields: str) -> MultiDict[str]:
    return MultiDict({key.replace("__", "."): value for key, value in fields.items()})


def test_rows_are_added_and_removed_keeping_the_others() -> None:
    form = CaseForm.from_post(MultiDict([
        ("victim_rows", "2"), ("victims[0].name", "Ana"), ("victims[1].name", "Berta"),
        ("victims[1].groups", "journalist"), ("victims[1].groups", "lawyer"),
    ]))
    assert form.apply("add_victim") and len(form.victims) == 3
    assert form.apply("remove_victim:0")
    assert [v.name for v in form.victims] == ["Berta", ""]
    assert form.victims[0].groups == ["journalist", "lawyer"]
    assert form.apply("remove_victim:99") and len(form.victims) == 2
    assert not form.apply("save")


def test_errors_point_at_the_form_row_not_the_payload_row() -> None:
    form = CaseForm.from_post(MultiDict([
        ("incident_date.start.year", "2024"), ("country", "PE"), ("narrative", "x"),
        ("violations", "raid"), ("consent_level", "coalition"), ("risk_level", "low"),
        ("victim_rows", "3"), ("victims[1].kind", "individual"), ("victims[1].name", "Ana"),
        ("victims[2].name", "Sin tipo"),
    ]))
    payload, errors = form.to_payload(formatter("en"))
    assert payload is None
    assert errors == {"victims[2].kind": "This is required."}  # row 0 is blank, ignored


def test_a_partial_date_range_and_the_stored_form_round_trip() -> None:
    form = CaseForm.from_post(_post(
        incident_date__start__year="2023", incident_date__start__month="11",
        incident_date__end__year="2024", country="PE", narrative="x", violations="raid",
        consent_level="coalition", risk_level="low", victim_rows="1",
        **{"victims[0].kind": "collective", "victims[0].groups": "community"},
    ))
    payload, errors = form.to_payload(formatter("en"))
    assert errors == {} and payload is not None
    assert payload["incident_date"] == "2023-11/2024"
    again = CaseForm.from_payload(payload, 4)
    assert (again.start.month, again.end.year, again.expected_version) == ("11", "2024", 4)
    assert Case.model_validate(again.to_payload(formatter("en"))[0]) == Case.model_validate(
        payload)


def test_an_edit_removes_emptied_fields_and_keeps_unknown_ones() -> None:
    old = {"title": "t", "place": "p", "narrative": "n", "x_newer_field": 1}
    new = {"title": "t2", "narrative": "n"}
    assert replacement_patch(old, new) == {"title": "t2", "narrative": "n", "place": None}


def _stored(payload: dict[str, Any]) -> StoredCase:
    now = datetime.now(UTC)
    return StoredCase("0190a5c4-0000-7000-8000-0000000000aa", 1, {"payload": payload},
                      CaseIndex(), now, now)


def test_search_matches_text_names_and_ids_ignoring_accents() -> None:
    case = _stored({"narrative": "Desplazamiento en Tumaco", "victims": [
        {"kind": "individual", "native_name": "Алесь Кавалёў", "romanised_name": "Ales"}],
        "sources": ["Defensoría del Pueblo"]})
    assert matches(case, normalise_label("tumaco"))
    assert matches(case, normalise_label("кавалёў"))
    assert matches(case, normalise_label("DEFENSORIA"))
    assert matches(case, normalise_label("0190a5c4"))
    assert not matches(case, normalise_label("Bogotá"))
