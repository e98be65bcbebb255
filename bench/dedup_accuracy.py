"""Accuracy of case de-duplication on labelled pairs: precision and recall at the match threshold.

Usage: .venv/bin/python bench/dedup_accuracy.py [PAIRS_FILE] [--synthetic N] [--seed S]
       [--scheme minga.clk:1|minga.clk:2] [--verbose]

For each pair, ``a`` is encoded as a case the responder holds and ``b`` as the querier's draft,
with exactly the code a node uses (``encode_case_features`` under a linkage key, then
``compare``), and the pair counts as a match when the score reaches the ``low`` band (any band
but ``none``: what the answer calls a possible match). Prints the confusion table, the bands,
the errors by kind of variation, precision and recall, and, when the pairs carry a ``culture``
key (``dedup-hard-dev.jsonl``), precision and recall per naming culture; the last line is
``precision=<N> recall=<N>``. Target: both at least 0.95. ``--scheme`` picks the encoding
scheme (default: the current one, ``federation.linkage.SCHEME``).

PAIRS_FILE defaults to ``../shared/data/dedup-dev.jsonl`` next to the repository (format in
that directory's README). ``--synthetic N`` evaluates N generated pairs instead: invented people
from several naming cultures (Spanish-speaking Latin America, Brazil, the Philippines, Kenya and
Uganda, Tanzania, the Arab world in Arabic script and Latin, Russia/Belarus/Ukraine in Cyrillic
and Latin) with none of the development file's names, and the same kinds of variation (accents,
case, typos, dropped second surname / middle name / Christian name, middle initial, particle
spacing, surname first, order reversed, native script, other romanisations, dates shifted by up
to two days or known to the month, place spelling) and of negatives (another person on the same
day at the same place, often a relative sharing the family names; the same person in an incident
40 to 700 days apart; unrelated cases). The thresholds were chosen on kinds of variation, never
on names: this set is how to check that they hold for other people's names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from federation.linkage import (
    LOW,
    SCHEME,
    SCHEMES,
    CaseFeatures,
    LinkageKey,
    compare,
    encode_case_features,
    score_band,
)

DEFAULT_PAIRS = Path(__file__).resolve().parents[1].parent / "shared/data/dedup-dev.jsonl"
Record = dict[str, str]
Pair = dict[str, Any]


# --- evaluation ----------------------------------------------------------------------------


@dataclass
class Tally:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    true_negative: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        same = self.true_positive + self.false_negative
        return self.true_positive / same if same else 1.0


def evaluate(
    pairs: list[Pair], key: LinkageKey, *, verbose: bool, scheme: str = SCHEME
) -> Tally:
    tally = Tally()
    by_culture: dict[str, Tally] = {}
    bands: Counter[tuple[bool, str]] = Counter()
    missed: Counter[str] = Counter()
    wrongly_matched: Counter[str] = Counter()
    started = time.perf_counter()
    for pair in pairs:
        held = encode_case_features(_features(pair["a"]), key, scheme=scheme)
        query = encode_case_features(_features(pair["b"]), key, scheme=scheme)
        score = compare(query, held)
        band = score_band(score)
        matched = band != "none"
        same = bool(pair["same"])
        bands[(same, band)] += 1
        if "culture" in pair:
            _count(by_culture.setdefault(str(pair["culture"]), Tally()), same, matched)
        if same and matched:
            tally.true_positive += 1
        elif same:
            tally.false_negative += 1
            missed[pair.get("why", "?")] += 1
        elif matched:
            tally.false_positive += 1
            wrongly_matched[pair.get("why", "?")] += 1
        else:
            tally.true_negative += 1
        if verbose and matched != same:
            print(f"  {'missed' if same else 'false match'} {score}: {pair['a']} | {pair['b']}")
    elapsed = time.perf_counter() - started
    _report(pairs, tally, bands, missed, wrongly_matched, elapsed)
    if by_culture:
        _print_cultures(by_culture)
    return tally


def _count(tally: Tally, same: bool, matched: bool) -> None:
    if same and matched:
        tally.true_positive += 1
    elif same:
        tally.false_negative += 1
    elif matched:
        tally.false_positive += 1
    else:
        tally.true_negative += 1


def _print_cultures(by_culture: dict[str, Tally]) -> None:
    """Precision and recall per naming culture (the pairs' optional ``culture`` key)."""
    print(f"\n{'culture':<12}{'pairs':>7}{'TP':>6}{'FN':>6}{'FP':>6}{'precision':>11}{'recall':>8}")
    for culture, tally in sorted(by_culture.items()):
        pairs = (
            tally.true_positive + tally.false_negative + tally.false_positive
            + tally.true_negative
        )
        print(
            f"{culture:<12}{pairs:>7}{tally.true_positive:>6}{tally.false_negative:>6}"
            f"{tally.false_positive:>6}{tally.precision:>11.3f}{tally.recall:>8.3f}"
        )


def _features(record: Record) -> CaseFeatures:
    return CaseFeatures(
        names=[record["name"]],
        date=record.get("date") or None,
        place=record.get("place") or None,
        country=record["country"],
    )


def _report(
    pairs: list[Pair],
    tally: Tally,
    bands: Counter[tuple[bool, str]],
    missed: Counter[str],
    wrongly_matched: Counter[str],
    elapsed: float,
) -> None:
    print(
        f"encoded and compared {len(pairs)} pairs in {elapsed:.1f} s "
        f"({1000 * elapsed / max(len(pairs), 1):.2f} ms per pair, both encodings included)"
    )
    print(f"match = score >= {LOW} (band low, medium or high)\n")
    print(f"{'':>16}{'match':>10}{'no match':>10}")
    print(f"{'same':>16}{tally.true_positive:>10}{tally.false_negative:>10}")
    print(f"{'different':>16}{tally.false_positive:>10}{tally.true_negative:>10}\n")
    for same in (True, False):
        counts = ", ".join(
            f"{band} {bands[(same, band)]}" for band in ("high", "medium", "low", "none")
        )
        print(f"bands of {'same' if same else 'different'}-person pairs: {counts}")
    _print_kinds("missed (same person, no match)", missed)
    _print_kinds("false matches (different, matched)", wrongly_matched)
    print(f"\nprecision {tally.precision:.4f}  recall {tally.recall:.4f}")


def _print_kinds(title: str, kinds: Counter[str]) -> None:
    if not kinds:
        return
    print(f"{title}:")
    for kind, count in kinds.most_common():
        print(f"  {count:>4}  {kind}")


def read_pairs(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs_file", nargs="?", type=Path, default=DEFAULT_PAIRS)
    parser.add_argument("--synthetic", type=int, metavar="N", help="evaluate N generated pairs")
    parser.add_argument("--seed", type=int, default=7, help="generator and linkage key seed")
    parser.add_argument("--verbose", action="store_true", help="print every error")
    parser.add_argument(
        "--scheme", default=SCHEME, choices=SCHEMES, help=f"encoding scheme (default {SCHEME})"
    )
    args = parser.parse_args()
    key = LinkageKey(hashlib.sha256(f"dedup-accuracy-{args.seed}".encode()).digest())
    if args.synthetic:
        pairs = synthetic_pairs(args.synthetic, seed=args.seed)
        source = f"{args.synthetic} synthetic pairs (seed {args.seed}), other names"
    else:
        pairs = read_pairs(args.pairs_file)
        source = str(args.pairs_file)
    same = sum(bool(pair["same"]) for pair in pairs)
    print(f"pairs: {source}: {same} same person, {len(pairs) - same} different")
    print(f"scheme: {args.scheme}")
    tally = evaluate(pairs, key, verbose=args.verbose, scheme=args.scheme)
    print(f"precision={tally.precision:.3f} recall={tally.recall:.3f}")


# --- synthetic pairs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One name of a person: its Latin spellings (the first is the usual one), native script."""

    role: str  # christian, given, middle, surname, surname2
    latin: tuple[str, ...]
    native: str | None = None


@dataclass(frozen=True)
class Culture:
    name: str
    places: dict[str, tuple[str, ...]]
    parts: dict[str, tuple[Part, ...]]
    shape: tuple[tuple[str, float], ...]  # (role, probability that a person has one)
    variations: tuple[str, ...]
    native_share: float = 0.0


@dataclass(frozen=True)
class Person:
    culture: Culture
    parts: tuple[Part, ...]


def _latin(role: str, names: str) -> tuple[Part, ...]:
    return tuple(Part(role, (name.strip(),)) for name in names.split(","))


def _scripted(role: str, rows: str) -> tuple[Part, ...]:
    parts = []
    for row in rows.strip().splitlines():
        native, latin = row.split("=")
        parts.append(Part(role, tuple(v.strip() for v in latin.split("|")), native.strip()))
    return tuple(parts)


HISPANIC_SURNAMES = _latin(
    "surname",
    "Aguilar, Cárdenas, Domínguez, Escobar, Fuentes, Gutiérrez, Hernández, Jiménez, Londoño,"
    " Márquez, Ocampo, Quiñones, Restrepo, Salazar, Tobón, Urrutia, Vargas, Yepes, Zúñiga,"
    " Villanueva, de la Torre, del Río, de los Santos, Montaño, Caicedo, Ibarra, Peñaloza, Solís,"
    " Chávez, Mendoza, Arboleda, Becerra, Cuéllar, Durán, Echeverría, Galeano, Henao, Lozano",
)
CULTURES: tuple[Culture, ...] = (
    Culture(
        "hispanic",
        {
            "CO": ("Popayán", "Montería", "Sincelejo", "Arauca", "Cúcuta", "El Carmen de Bolívar"),
            "MX": ("Ciudad Juárez", "Oaxaca de Juárez", "Tapachula", "Culiacán"),
            "GT": ("Cobán", "Huehuetenango", "Quetzaltenango"),
            "HN": ("Choluteca", "San Pedro Sula"),
            "PE": ("Cajamarca", "Ayacucho", "Puno"),
            "BO": ("Cochabamba", "El Alto"),
        },
        {
            "given": _latin(
                "given",
                "Adriana, Beatriz, Camilo, Diego, Esperanza, Fernando, Gloria, Héctor, Inés,"
                " Jorge, Leonor, Mauricio, Nayeli, Óscar, Patricia, Rigoberto, Sofía, Ulises,"
                " Valentina, Wilmer, Ximena, Yolanda, Joaquín, Dolores, Ramón, Rocío, Emilio",
            ),
            "middle": _latin("middle", "Luis, José, Lucía, Andrés, Eugenia, Alejandro, Isabel"),
            "surname": HISPANIC_SURNAMES,
            "surname2": tuple(replace(p, role="surname2") for p in HISPANIC_SURNAMES),
        },
        (("given", 1.0), ("middle", 0.25), ("surname", 1.0), ("surname2", 0.85)),
        ("surname2_dropped", "surname_first", "particle_spacing", "accents", "case", "typo"),
    ),
    Culture(
        "lusophone",
        {"BR": ("São Félix do Xingu", "Altamira", "Marabá", "Porto Velho", "Anapu")},
        {
            "given": _latin(
                "given",
                "João, Luíza, Raimunda, Francisca, Antônio, Sebastião, Conceição, Edivaldo,"
                " Josefa, Valdir, Rosimeire, Cícero",
            ),
            "surname": _latin(
                "surname",
                "da Silva, dos Santos, Gonçalves, Araújo, da Conceição, Nascimento, Pereira,"
                " Rodrigues, de Souza, Ferreira, Lima, Barbosa",
            ),
            "surname2": _latin(
                "surname2", "Moura, Cavalcante, Brito, Teixeira, Macedo, Queiroz, Sampaio"
            ),
        },
        (("given", 1.0), ("surname", 1.0), ("surname2", 0.6)),
        ("surname2_dropped", "particle_spacing", "accents", "case", "typo"),
    ),
    Culture(
        "filipino",
        {
            "PH": (
                "Cagayan de Oro",
                "Tacloban",
                "Iloilo",
                "Zamboanga del Norte",
                "Sorsogon",
                "Masbate",
                "Cotabato",
            )
        },
        {
            "given": _latin(
                "given",
                "Analyn, Bernadette, Crisanto, Dondon, Edgardo, Florencia, Genalyn, Honeylyn,"
                " Jericho, Lorna, Marivic, Nestor, Ofelia, Reynaldo, Shiela, Virgilio, Rodel,"
                " Arnel, Jovelyn, Mary Grace, John Paul",
            ),
            "middle": _latin(
                "middle",
                "Aquino, Buenaventura, Catapang, Dimaculangan, Evangelista, Gatchalian, Ilagan,"
                " Lacson, Magbanua, Delos Reyes, De Guzman, Dela Paz, Mercado, Salonga",
            ),
            "surname": _latin(
                "surname",
                "Navarro, Panganiban, Quisumbing, Saldivar, Villareal, Delos Santos, De Guzman,"
                " Dela Paz, Tuazon, Agbayani, Magsaysay, Sumague, Ocampo, Baluyot",
            ),
        },
        (("given", 1.0), ("middle", 0.9), ("surname", 1.0)),
        ("middle_initial", "middle_dropped", "particle_spacing", "accents", "case", "typo"),
    ),
    Culture(
        "kenyan",
        {
            "KE": ("Garissa", "Kakamega", "Machakos", "Nyeri", "Homa Bay", "Bungoma", "Migori"),
            "UG": ("Gulu", "Mbarara", "Kasese"),
        },
        {
            "christian": _latin(
                "christian",
                "Agnes, Beatrice, Collins, Dorcas, Emmanuel, Gladys, Hillary, Irene, Jacinta,"
                " Lucy, Moses, Naomi, Patrick, Stephen, Tabitha, Violet, Wycliffe",
            ),
            "given": _latin(
                "given",
                "Nafula, Moraa, Kerubo, Wekesa, Njeri, Kiptoo, Jelimo, Muthoni, Onyango,"
                " Wairimu, Chepkemoi, Kiprono, Nyambura, Makena, Wambui, Okoth, Nekesa, Langat",
            ),
            "surname": _latin(
                "surname",
                "Mwangi, Wanyama, Kemunto, Mutiso, Nduta, Kiprotich, Ndungu, Oduya, Chelimo,"
                " Masinde, Njoroge, Kipchumba, Anyango, Wairagu, Ruto, Biwott",
            ),
        },
        (("christian", 0.6), ("given", 1.0), ("surname", 1.0)),
        ("christian_dropped", "order_reversed", "accents", "case", "typo"),
    ),
    Culture(
        "swahili",
        {"TZ": ("Arusha", "Mwanza", "Dodoma", "Mtwara", "Kigoma")},
        {
            "given": _latin(
                "given",
                "Amani, Baraka, Halima, Juma, Mwajuma, Rehema, Saidi, Zawadi, Neema, Hamisi,"
                " Upendo, Tumaini, Mussa, Ramadhani",
            ),
            "middle": _latin("middle", "Athumani, Selemani, Abdallah, Hassani, Omari, Bakari"),
            "surname": _latin(
                "surname",
                "Mwakyusa, Mbwana, Msuya, Shirima, Lyimo, Mushi, Massawe, Kimaro, Mrema,"
                " Nyirenda, Mwakalinga",
            ),
        },
        (("given", 1.0), ("middle", 0.6), ("surname", 1.0)),
        ("middle_dropped", "order_reversed", "case", "typo"),
    ),
    Culture(
        "arabic",
        {
            "SY": ("Deir ez-Zor", "Raqqa", "Hama"),
            "IQ": ("Mosul", "Kirkuk", "Nasiriyah"),
            "EG": ("Alexandria", "Asyut", "Minya"),
            "YE": ("Taiz", "Aden", "Hodeidah"),
            "PS": ("Hebron", "Nablus"),
        },
        {
            "given": _scripted(
                "given",
                """
                خالد = Khaled | Khalid
                حسن = Hassan | Hasan
                يوسف = Youssef | Yusuf | Yousef
                عمر = Omar | Umar
                أحمد = Ahmed | Ahmad
                زينب = Zainab | Zeinab | Zaynab
                ليلى = Layla | Leila | Laila
                عائشة = Aisha | Aicha | Aysha
                إبراهيم = Ibrahim | Ebrahim
                هدى = Huda | Hoda
                كريم = Karim | Kareem
                نادية = Nadia | Nadiya
                طارق = Tarek | Tariq | Tarik
                رشا = Rasha | Racha
                ياسمين = Yasmin | Yasmine
                حمزة = Hamza | Hamzah
                جمال = Jamal | Gamal
                منى = Mona | Muna
                عبد الله = Abdullah | Abdallah | Abd Allah
                """,
            ),
            "surname": _scripted(
                "surname",
                """
                حداد = Haddad | Hadad
                النجار = al-Najjar | El Naggar | Alnajjar
                الخطيب = al-Khatib | El Khatib | Alkhatib
                ناصر = Nasser | Nasir | Naser
                الحسيني = al-Husseini | El Husseiny | Al Husayni
                عثمان = Othman | Osman | Uthman
                شهاب = Shehab | Shihab | Chehab
                قاسم = Qassem | Kassem | Qasim
                درويش = Darwish | Darwiche
                الشامي = al-Shami | El Chami | Alshami
                البدري = al-Badri | El Badry
                يعقوب = Yacoub | Yaqub | Yakoub
                صالح = Saleh | Salih
                الجبوري = al-Jubouri | Al Jabouri
                عبد الرحمن = Abdel Rahman | Abdulrahman | Abd al-Rahman
                """,
            ),
        },
        (("given", 1.0), ("surname", 1.0)),
        ("native", "romanised", "accents", "case", "typo"),
        native_share=0.35,
    ),
    Culture(
        "slavic",
        {
            "RU": ("Yekaterinburg", "Nizhny Novgorod", "Voronezh", "Kazan"),
            "BY": ("Vitebsk", "Mogilev", "Brest"),
            "UA": ("Kharkiv", "Zaporizhzhia"),
        },
        {
            "given": _scripted(
                "given",
                """
                Наталья = Natalya | Natalia | Natalja
                Олег = Oleg
                Татьяна = Tatyana | Tatiana | Tatjana
                Андрей = Andrei | Andrey | Andrej
                Екатерина = Ekaterina | Yekaterina
                Михаил = Mikhail | Mihail | Michail
                Ольга = Olga
                Владимир = Vladimir | Wladimir
                Ксения = Ksenia | Kseniya | Xenia
                Илья = Ilya | Ilia | Ilja
                Анастасия = Anastasia | Anastasiya
                Григорий = Grigory | Grigoriy | Grigorii
                Людмила = Lyudmila | Ludmila | Liudmila
                Евгений = Evgeny | Yevgeniy | Evgenii
                """,
            ),
            "surname": _scripted(
                "surname",
                """
                Кузнецов = Kuznetsov | Kouznetsov | Kuznecov
                Волкова = Volkova
                Морозов = Morozov
                Лебедева = Lebedeva
                Козлов = Kozlov
                Новикова = Novikova
                Васильев = Vasilyev | Vasiliev | Vassiliev
                Павлова = Pavlova
                Соловьёв = Solovyov | Soloviev | Solovev
                Жуков = Zhukov | Joukov
                Щербаков = Shcherbakov | Scherbakov
                Ковальчук = Kovalchuk | Kovaltchouk
                Белова = Belova
                Орлов = Orlov
                Бондаренко = Bondarenko
                Ткаченко = Tkachenko | Tkatchenko
                Ярошенко = Yaroshenko | Iaroshenko
                """,
            ),
        },
        (("given", 1.0), ("surname", 1.0)),
        ("native", "romanised", "case", "typo"),
        native_share=0.35,
    ),
)

CULTURE_WEIGHTS = {
    "hispanic": 4, "lusophone": 1, "filipino": 3, "kenyan": 3, "swahili": 1, "arabic": 2,
    "slavic": 2,
}  # fmt: skip
FIRST_DAY = date(2018, 1, 1)
DAYS = 7 * 365
# Shares of the kinds of pairs, close to the development file's.
SAME_SHARE, ANOTHER_PERSON_SHARE, OTHER_INCIDENT_SHARE = 0.5, 0.17, 0.17
VARIATION_CHANCE = 0.35
_PARTICLE = re.compile(r"\b(De la|de la|Dela|De los|de los|Delos|De|de|Del|del|da|dos|do) (\w)")


def synthetic_pairs(count: int, seed: int = 7) -> list[Pair]:
    rng = random.Random(seed)
    cultures = [culture for culture in CULTURES for _ in range(CULTURE_WEIGHTS[culture.name])]
    return [_pair(rng, rng.choice(cultures)) for _ in range(count)]


def _pair(rng: random.Random, culture: Culture) -> Pair:
    country = rng.choice(sorted(culture.places))
    place = rng.choice(culture.places[country])
    day = FIRST_DAY + timedelta(rng.randrange(DAYS))
    person = _person(rng, culture)
    roll = rng.random()
    if roll < SAME_SHARE:
        return _same_person(rng, person, day, place, country)
    a = _record(_render(rng, person, _native(rng, culture), False), day.isoformat(), place, country)
    if roll < SAME_SHARE + ANOTHER_PERSON_SHARE:
        other = _relative(rng, person) if rng.random() < 0.4 else _person(rng, culture, person)
        name = _render(rng, other, _native(rng, culture), False)
        b = _record(name, a["date"], place, country)
        return {"a": a, "b": b, "same": False, "why": "another person, same date and place"}
    if roll < SAME_SHARE + ANOTHER_PERSON_SHARE + OTHER_INCIDENT_SHARE:
        when = (day + timedelta(rng.randrange(40, 700) * rng.choice([-1, 1]))).isoformat()
        when = when[:7] if rng.random() < 0.15 else when
        name = _render(rng, person, _native(rng, culture), rng.random() < 0.3)
        where = place if rng.random() < 0.8 else rng.choice(culture.places[country])
        b = _record(name, when, where, country)
        return {"a": a, "b": b, "same": False, "why": "same person, different incident"}
    other = _person(rng, culture, person)
    when = (FIRST_DAY + timedelta(rng.randrange(DAYS))).isoformat()
    b = _record(
        _render(rng, other, False, False), when, rng.choice(culture.places[country]), country
    )
    return {"a": a, "b": b, "same": False, "why": "unrelated"}


def _record(name: str, when: str, place: str, country: str) -> Record:
    return {"name": name, "date": when, "place": place, "country": country}


def _native(rng: random.Random, culture: Culture) -> bool:
    return rng.random() < culture.native_share


def _person(rng: random.Random, culture: Culture, unlike: Person | None = None) -> Person:
    while True:
        parts = tuple(
            rng.choice(culture.parts[role])
            for role, chance in culture.shape
            if rng.random() < chance
        )
        if unlike is None or parts != unlike.parts:
            return Person(culture, parts)


def _relative(rng: random.Random, person: Person) -> Person:
    """A relative: the same family names (in the Philippines also the middle name), other given."""
    family = {"surname", "surname2"} | ({"middle"} if person.culture.name == "filipino" else set())
    parts = tuple(
        part
        if part.role in family
        else rng.choice([other for other in person.culture.parts[part.role] if other != part])
        for part in person.parts
    )
    return replace(person, parts=parts)


def _render(rng: random.Random, person: Person, native: bool, other_romanisation: bool) -> str:
    words = []
    for part in person.parts:
        if native and part.native:
            words.append(part.native)
        else:
            words.append(rng.choice(part.latin) if other_romanisation else part.latin[0])
    return " ".join(words)


def _same_person(rng: random.Random, person: Person, day: date, place: str, country: str) -> Pair:
    culture = person.culture
    a_native = _native(rng, culture)
    kinds = {kind for kind in culture.variations if rng.random() < VARIATION_CHANCE}
    why: list[str] = []
    b_person = _drop_parts(person, kinds, why)
    b_native = a_native
    if "native" in kinds:
        b_native = not a_native
        why.append("native script")
    if "romanised" in kinds:
        b_native = False
        why.append("romanised")
    name = _render(rng, b_person, b_native, "romanised" in kinds)
    name = _rewrite(rng, b_person, name, kinds, b_native, why)
    b_day = day + timedelta(rng.choice([-2, -1, 1, 2])) if rng.random() < 0.35 else day
    if b_day != day:
        why.append("date shifted")
    b_date = b_day.isoformat()
    if rng.random() < 0.12:
        b_date = b_date[:7]
        why.append("month only")
    b_place = place
    if rng.random() < 0.1:
        b_place = _strip_accents(place).lower()
        why.append("place spelling")
    a = _record(_render(rng, person, a_native, False), day.isoformat(), place, country)
    b = _record(name, b_date, b_place, country)
    return {"a": a, "b": b, "same": True, "why": ", ".join(why) or "identical"}


def _drop_parts(person: Person, kinds: set[str], why: list[str]) -> Person:
    dropped = {
        "surname2_dropped": ("surname2", "second surname dropped"),
        "middle_dropped": ("middle", "middle name dropped"),
        "christian_dropped": ("christian", "christian name dropped"),
    }
    for kind, (role, label) in dropped.items():
        if kind in kinds and any(part.role == role for part in person.parts):
            person = replace(person, parts=tuple(p for p in person.parts if p.role != role))
            why.append(label)
    return person


def _rewrite(
    rng: random.Random, person: Person, name: str, kinds: set[str], native: bool, why: list[str]
) -> str:
    middle = next((part for part in person.parts if part.role == "middle"), None)
    if "middle_initial" in kinds and middle is not None and middle.latin[0] in name:
        name = name.replace(middle.latin[0], middle.latin[0][0] + ".")
        why.append("middle initial")
    if "particle_spacing" in kinds and _PARTICLE.search(name):
        name = _particle_spacing(rng, name)
        why.append("particle spacing")
    if "order_reversed" in kinds:
        name = " ".join(reversed(name.split(" ")))
        why.append("order reversed")
    surname = next((part for part in person.parts if part.role == "surname"), None)
    if "surname_first" in kinds and not native and surname is not None:
        given = " ".join(p.latin[0] for p in person.parts if p.role in ("given", "middle"))
        name = f"{surname.latin[0]}, {given}"
        why.append("surname first")
    if "accents" in kinds:
        name = _strip_accents(name)
        why.append("accents dropped")
    if "typo" in kinds:
        name = _typo(rng, name)
        why.append("typo")
    if "case" in kinds:
        name = name.upper() if rng.random() < 0.5 else name.lower()
        why.append("case")
    return name


def _particle_spacing(rng: random.Random, name: str) -> str:
    match = _PARTICLE.search(name)
    assert match is not None
    particle, initial = match.groups()
    if rng.random() < 0.5:
        written = particle.replace(" ", "") + initial
    else:
        written = (
            {"Dela": "de la", "Delos": "de los"}.get(particle, particle.lower()) + " " + initial
        )
    return name[: match.start()] + written + name[match.end() :]


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def _typo(rng: random.Random, name: str) -> str:
    """One slip of the keyboard in one word: a doubled, dropped, swapped or wrong letter."""
    words = name.split(" ")
    long_words = [index for index, word in enumerate(words) if len(word) >= 4]
    if not long_words:
        return name
    index = rng.choice(long_words)
    word = words[index]
    at = rng.randrange(1, len(word) - 1)
    slip = rng.choice(["double", "drop", "swap", "wrong"])
    if slip == "double":
        word = word[:at] + word[at] + word[at:]
    elif slip == "drop":
        word = word[:at] + word[at + 1 :]
    elif slip == "swap":
        word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    else:
        letters = "abcdefghijklmnopqrstuvwxyz" if word.isascii() else _letters_of(words)
        word = word[:at] + rng.choice(letters) + word[at + 1 :]
    words[index] = word
    return " ".join(words)


def _letters_of(words: Iterable[str]) -> str:
    return "".join(char for word in words for char in word if char.isalpha())


if __name__ == "__main__":
    main()
