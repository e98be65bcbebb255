"""A real node (``init_node`` on a real homeserver) serving its HTTP API to a test client."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from deploy.homeserver import Homeserver
from node.assembly import node_registry
from node.core.api.app import mount_api
from node.core.runtime import Node, open_node
from node.core.setup import MatrixAccountChoice, init_node
from node.core.store import Role

PASSPHRASE = "api tests: a passphrase nobody guesses"
USERS = {Role.admin: "amaru", Role.editor: "beatriz", Role.viewer: "chidi"}


class FakeClock:
    """Unix seconds that advance by one at every reading."""

    def __init__(self, start: int = 1_717_000_000) -> None:
        self.value = start

    def __call__(self) -> int:
        self.value += 1
        return self.value


class WallClock(FakeClock):
    """Real Unix seconds: for tests where key validity (rotation, revocation) meets the
    envelopes' creation times, which the outbox takes from the real clock."""

    def __call__(self) -> int:
        self.value = int(time.time())
        return self.value


@dataclass
class RunningApi:
    node: Node
    client: TestClient[web.Request, web.Application]
    tokens: dict[Role, str]
    clock: FakeClock

    async def call(
        self, method: str, path: str, role: Role | None = Role.editor, **kwargs: Any
    ) -> ClientResponse:
        """Call ``/api/v1{path}`` as the user of ``role`` (no token at all if None)."""
        headers = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return await self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    async def json(
        self, method: str, path: str, role: Role | None = Role.editor, *, expect: int = 200,
        **kwargs: Any,
    ) -> Any:
        answer = await self.call(method, path, role, **kwargs)
        text = await answer.text()
        assert answer.status == expect, f"{method} {path}: {answer.status} {text}"
        return await answer.json()

    async def file(self, path: str, role: Role | None = Role.editor) -> ServedFile:
        """``GET /api/v1{path}`` served as a file: its text, media type, name and headers."""
        answer = await self.call("GET", path, role)
        text = await answer.text()
        assert answer.status == 200, f"GET {path}: {answer.status} {text}"
        disposition = answer.headers["Content-Disposition"]
        assert disposition.startswith("attachment; filename=")
        return ServedFile(text=text, media_type=answer.headers["Content-Type"],
                          file_name=disposition.split('"')[1], headers=dict(answer.headers))


@dataclass(frozen=True)
class ServedFile:
    text: str
    media_type: str
    file_name: str
    headers: dict[str, str]


@contextmanager
def _passphrase_env() -> Iterator[None]:
    before = os.environ.get("MINGA_PASSPHRASE")
    os.environ["MINGA_PASSPHRASE"] = PASSPHRASE
    try:
        yield
    finally:
        if before is None:
            del os.environ["MINGA_PASSPHRASE"]
        else:
            os.environ["MINGA_PASSPHRASE"] = before


async def create_node(homeserver: Homeserver, directory: Path, name: str, country: str) -> Path:
    result = await init_node(
        data_dir=directory, org_name=name, country=country, homeserver_url=homeserver.url,
        passphrase=PASSPHRASE,
        account=MatrixAccountChoice(registration_secret=homeserver.state.registration_shared_secret),
    )
    return result.config_file


@asynccontextmanager
async def serve_node(config: Path, clock: FakeClock | None = None) -> AsyncIterator[RunningApi]:
    """Open the node in ``config``, give each role a token, serve the API to a test client
    (issue times from ``clock``, by default a :class:`FakeClock`)."""
    with _passphrase_env():
        async with open_node(config) as node:
            tokens = {}
            async with node.store.transaction() as tx:
                for role, user in USERS.items():
                    tokens[role] = await tx.tokens.create(user, role)
            clock = clock or FakeClock()
            app = web.Application()
            mount_api(app, node, node_registry().endpoints, now=clock)
            async with TestClient(TestServer(app)) as client:
                yield RunningApi(node, client, tokens, clock)


@asynccontextmanager
async def running_api(
    homeserver: Homeserver, directory: Path, name: str = "Comité Andino de Derechos",
    country: str = "CO",
) -> AsyncIterator[RunningApi]:
    """A fresh node on ``homeserver`` serving its API."""
    config = await create_node(homeserver, directory, name, country)
    async with serve_node(config) as api:
        yield api


# Invented incidents in several languages and scripts; every person and place is fictional.
SAMPLE_CASES: dict[str, dict[str, Any]] = {
    "cauca": {
        "title": "Amenazas contra lideresa nasa",
        "incident_date": "2023-05",
        "country": "CO",
        "place": "Vereda El Palo, Toribío, Cauca",
        "narrative": "Panfletos firmados por un grupo armado declararon objetivo militar a la "
                     "gobernadora del resguardo tras una minga por el territorio.",
        "violations": ["death_threat", "stigmatisation"],
        "victims": [
            {"kind": "individual", "name": "María Fernanda Yatacué Pito", "gender": "woman",
             "groups": ["indigenous_leader", "woman_hrd"]},
            {"kind": "collective", "name": "Resguardo Nasa Wesx Tekh", "groups": ["community"]},
        ],
        "perpetrators": [{"category": "armed_group"}],
        "verification_status": "verified",
        "independent_sources": 2,
        "consent_level": "coalition",
        "risk_level": "high",
        "impact_story": "La comunidad suspendió las asambleas durante tres meses.",
    },
    "nairobi": {
        "title": "Journalist held after covering eviction",
        "incident_date": "2024-02-14",
        "country": "KE",
        "place": "Kibera, Nairobi",
        "narrative": "Police held the reporter overnight without charge; alisema walimpiga "
                     "alipokataa kufuta picha za ubomoaji.",
        "violations": ["arbitrary_detention", "physical_assault"],
        "victims": [{"kind": "individual", "name": "Wanjiru Atieno Kamau", "gender": "woman",
                     "groups": ["journalist"]}],
        "perpetrators": [{"category": "police"}],
        "impunity_status": "reported_no_action",
        "consent_level": "coalition",
        "risk_level": "medium",
    },
    "mindanao": {
        "incident_date": "2022-11/2023-03",
        "country": "PH",
        "place": "Barangay San Isidro, Bukidnon",
        "narrative": "Sinampahan ng gawa-gawang kaso ang mga lider ng unyon at minanmanan ang "
                     "kanilang opisina ng mga lalaking naka-motorsiklo.",
        "violations": ["judicial_harassment", "surveillance"],
        "victims": [{"kind": "individual", "name": "Rowena Dumalagan", "gender": "woman",
                     "groups": ["trade_unionist"]},
                    {"kind": "individual", "name": "Jomar Pacaña", "gender": "man",
                     "groups": ["trade_unionist"]}],
        "perpetrators": [{"category": "military"}, {"category": "judiciary"}],
        "consent_level": "anonymised",
        "risk_level": "critical",
    },
    "khartoum": {
        "incident_date": "2023",
        "country": "SD",
        "narrative": "اختفت المحامية بعد أن داهم مسلحون مكتبها، ولم تعترف أي جهة باحتجازها.",
        "violations": ["enforced_disappearance", "raid"],
        "victims": [{"kind": "individual", "native_name": "آمال عثمان الطيب",
                     "romanised_name": "Amal Osman Eltayeb", "groups": ["lawyer"]}],
        "perpetrators": [{"category": "unknown"}],
        "consent_level": "none",
        "risk_level": "critical",
    },
    "addis": {
        "incident_date": "2021-08",
        "country": "ET",
        "narrative": "የጋዜጠኛዋ ቤት ተፈትሾ ኮምፒውተሮቿ ተወሰዱ።",
        "violations": ["raid", "property_destruction"],
        "victims": [{"kind": "individual", "native_name": "ሰላም ተስፋዬ",
                     "romanised_name": "Selam Tesfaye", "groups": ["journalist"]}],
        "perpetrators": [{"category": "police"}],
        "consent_level": "public",
        "risk_level": "medium",
    },
    "minsk": {
        "incident_date": "2020-08-10/2020-08-12",
        "country": "BY",
        "narrative": "Правозащитника избили при задержании и трое суток держали без адвоката.",
        "violations": ["torture", "arbitrary_detention"],
        "victims": [{"kind": "individual", "native_name": "Алесь Кавалёў",
                     "romanised_name": "Ales Kavaliou", "groups": ["defender"]}],
        "perpetrators": [{"category": "police"}],
        "consent_level": "coalition",
        "risk_level": "high",
    },
}
