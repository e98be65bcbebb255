"""The one place for what fixes an encoding: scheme versions, romanisation sources, name tables.

Every member must encode a name to the same bits, so anything here that changes how a name is
normalised is part of the encoding scheme: change a table or a source version and the scheme
becomes a new version (:data:`SCHEME_V2` -> ``minga.clk:3``), which the coalition switches to at
its next linkage key rotation (docs/decisions/0020-name-romanisation.md). Tests per culture pin
the behaviour in ``tests/federation/test_linkage_cultures.py``.

The tables are general lists for each naming culture (the usual short forms of given names,
honorifics, particles), never lists of particular people. Spellings are written as the
normaliser sees them: lower case, accents removed (``ñ`` -> ``n``).
"""

from __future__ import annotations

from typing import Final

# --- schemes -------------------------------------------------------------------------------------

SCHEME_V1: Final = "minga.clk:1"
"""Decision 0004: romanisation tables for Arabic, Cyrillic and Greek only; no culture rules."""
SCHEME_V2: Final = "minga.clk:2"
"""Decision 0020: every script romanised (ICU, ToJyutping, anyascii, a Burmese table in
``romanise``), culture rules below, token kinds hashed under their own subkeys."""
SCHEME: Final = SCHEME_V2
"""The scheme this software encodes new queries in (after the key rotation that brings it)."""
SCHEMES: Final = (SCHEME_V1, SCHEME_V2)
"""Schemes this software answers queries in: both stay live until every member runs this
version; drop the old one from here to retire it."""

DATE_WINDOWS: Final = {SCHEME_V1: (2, 7), SCHEME_V2: (3, 6)}
"""(days of tolerance either way, longest span still compared by the day) per scheme: v2
tolerates three days (two sources about one incident are that far apart often enough), and so
compares spans of up to six days by the day, to stay within 12 day tags."""

# --- romanisation sources (scheme v2) ------------------------------------------------------------
# The exact versions the scheme was built and tested with (pinned in pyproject.toml; a test
# checks them): a newer ICU may spell a name differently, and then two members' encodings of
# the same name would no longer meet. A new version of a source is a new scheme version.

ICU_VERSION: Final = "72.1"
"""Debian 12's libicu; its CLDR transliterators romanise Han, Ethiopic, Tamil."""
TOJYUTPING_VERSION: Final = "3.2.0"
"""Cantonese (Jyutping) reading of each character, simplified or traditional; ``romanise``
turns it into the Hong Kong Government spelling."""
ANYASCII_VERSION: Final = "0.3.3"
"""Sinhala, which ICU has no transliterator for."""
TABLES_VERSION: Final = "2026.1"
"""Bump with any change to the tables below (it is a new scheme version too)."""

ICU_TRANSFORMS: Final = {
    "Han": "Han-Latin/Names",
    "Ethiopic": "Amharic-Latin/BGN",
    "Tamil": "Tamil-Latin",
    "Hans-Hant": "Hans-Hant",
}

# --- countries -> naming cultures ----------------------------------------------------------------

SPANISH: Final = frozenset(
    {
        "AR", "BO", "CL", "CO", "CR", "CU", "DO", "EC", "ES", "GQ", "GT", "HN", "MX", "NI",
        "PA", "PE", "PR", "PY", "SV", "UY", "VE",
    }
)  # fmt: skip
CHINESE: Final = frozenset({"CN", "HK", "MO", "TW"})
BURMESE: Final = frozenset({"MM"})
ETHIOPIAN: Final = frozenset({"ET", "ER"})
"""Given name, father's given name, grandfather's: the order says who is who."""
EAST_SLAVIC: Final = frozenset({"BY", "RU", "UA", "KZ"})
PERSIAN: Final = frozenset({"IR", "AF", "TJ"})
SRI_LANKAN: Final = frozenset({"LK"})
ARABIC_ARTICLE_CULTURES: Final = PERSIAN | frozenset(
    {
        "AE", "BH", "DZ", "EG", "EH", "IQ", "JO", "KW", "LB", "LY", "MA", "MR", "OM", "PS",
        "QA", "SA", "SD", "SO", "SY", "TN", "YE",
    }
)  # fmt: skip

# --- all cultures ----------------------------------------------------------------------------

NAME_VARIANTS: Final = {
    "mohammad": (
        "mohammed", "muhammad", "muhammed", "mohamed", "mohamad", "mohammod", "muhamad",
        "muhamed", "mohd", "mohamud",
    ),
    "ahmad": ("ahmed", "ahmet"),
    "mahmoud": ("mahmud", "mahmood", "mehmood"),
    "hossein": ("hussein", "husein", "hosein", "hussain", "husain", "husayn", "hosseyn"),
    "hassan": ("hasan", "hasaan"),
    "mostafa": ("mustafa", "moustafa", "mustapha", "mostapha"),
    "fatemeh": ("fatima", "fatemah", "fatimah", "fatma", "fateme"),
    "reza": ("riza", "rezza"),
    "yousef": ("youssef", "yusuf", "yousif", "yosef", "yusef"),
}  # fmt: skip
"""Spellings of one name that romanisations of Arabic and Persian scatter, folded to the first."""

# --- Spanish -------------------------------------------------------------------------------------

SPANISH_NICKNAMES: Final = {
    "francisco": (
        "paco", "pancho", "curro", "frasco", "quico", "kiko", "paquito", "panchito", "cisco",
        "chicho", "pacho",
    ),
    "jose": ("pepe", "chepe", "pepito", "cheo", "chema", "joselito", "pepillo"),
    "josefina": ("chepina", "pepita", "fina", "finita", "josefita", "chepa"),
    "josefa": ("pepa", "chefa"),
    "ignacio": ("nacho", "nachito"),
    "guadalupe": ("lupe", "lupita", "pita", "lupillo", "lupilla"),
    "jesus": ("chucho", "chuy", "chus", "chuchin", "chuyito"),
    "guillermo": ("memo", "guille", "memito", "willy"),
    "eduardo": ("lalo", "edu", "lalito", "guayo"),
    "graciela": ("chela", "chelita", "grace"),
    "concepcion": ("conchita", "concha", "conchi", "cony"),
    "antonio": ("tono", "tonio", "toni", "tonito", "nono", "tonino"),
    "antonia": ("tona", "tonia", "tonita"),
    "isabel": ("chabela", "chavela", "chabelita", "isa", "chabe"),
    "alicia": ("licha", "lichita"),
    "enrique": ("quique", "kike"),
    "manuel": ("manolo", "manolito", "manu", "lolo", "meno"),
    "rafael": ("rafa", "fale", "rafi"),
    "rosario": ("charo", "chayo", "chayito", "charito"),
    "dolores": ("lola", "loli", "lolita"),
    "fernando": ("nando", "fer", "nano", "fercho", "ferchito"),
    "ernesto": ("neto", "netito"),
    "rodolfo": ("fito", "rodo", "fofo"),
    "alfredo": ("fredo", "freddy", "fredi"),
    "federico": ("fede", "fico"),
    "gerardo": ("gera", "jerry"),
    "ricardo": ("richi", "ricky", "rica", "cayo"),
    "roberto": ("tito", "robe"),
    "alberto": ("beto", "betito"),
    "gregorio": ("goyo",),
    "vicente": ("chente", "chentito"),
    "salvador": ("chava", "chavo", "salva", "chavita"),
    "soledad": ("chole", "sole", "cholita"),
    "consuelo": ("chelo", "consu"),
    "gonzalo": ("chalo",),
    "alfonso": ("poncho", "ponchito"),
    "lorenzo": ("lencho",),
    "ramon": ("moncho", "monchito"),
    "sergio": ("checo",),
    "refugio": ("cuca", "cuco", "cuquita"),
    "hortensia": ("tencha",),
    "teresa": ("tere", "teresita", "techa"),
    "mercedes": ("meche", "mecha", "merche"),
    "margarita": ("magos", "marga", "margara", "mague"),
    "leticia": ("lety", "leti", "lecha"),
    "cecilia": ("ceci", "chila"),
    "patricia": ("paty", "pati", "patty"),
    "patricio": ("pato",),
    "beatriz": ("bea", "betty"),
    "cristina": ("cris", "tina"),
    "esperanza": ("espe", "lancha"),
    "eugenia": ("kena", "queña"),
    "gabriel": ("gabo",),
    "gabriela": ("gaby", "gabi"),
    "luis": ("lucho", "wicho", "luisito", "lucho"),
    "carlos": ("charly", "carlitos", "calo"),
    "pedro": ("perico", "pedrito"),
    "santiago": ("santi", "chago"),
    "nicolas": ("nico",),
    "jorge": ("coque",),
    "pilar": ("pili",),
    "socorro": ("coco", "soco"),
    "asuncion": ("chon", "chona"),
    "encarnacion": ("encarna",),
    "natividad": ("nati",),
    "victoria": ("vicky",),
    "yolanda": ("yola",),
    "alejandro": ("alex", "jano", "alejo"),
    "alejandra": ("ale", "jandra"),
    "leonardo": ("leo",),
    "daniel": ("dani",),
    "raul": ("rulo",),
    "armando": ("mando",),
    "aurelio": ("yeyo",),
    "bernardo": ("nardo",),
    "benjamin": ("benja",),
    "eusebio": ("chebo",),
    "anselmo": ("chemo",),
    "cayetano": ("tano",),
    "juan": ("juancho", "juanito"),
    "juana": ("juanita",),
    "lourdes": ("lulu",),
    "inmaculada": ("inma",),
    "maria": ("mari",),
}  # fmt: skip
"""The usual short forms of Spanish given names (Mexico, Central America, Venezuela,
Colombia, Spain); a form that serves several names goes with the commonest."""

SPANISH_GENDERED: Final = frozenset(
    {
        "adrian", "alberto", "alejandro", "alfredo", "angel", "antonio", "armando", "arturo",
        "augusto", "bernardo", "carlos", "cristian", "daniel", "dionisio", "eduardo", "emilio",
        "ernesto", "eugenio", "fabian", "fabricio", "federico", "felipe", "fernando",
        "francisco", "gabriel", "gerardo", "gilberto", "gustavo", "humberto", "ignacio",
        "jesus", "joaquin", "jose", "juan", "julian", "julio", "leonardo", "luciano", "luis",
        "manuel", "marcelo", "mariano", "mario", "martin", "mauricio", "miguel", "octavio",
        "orlando", "pablo", "patricio", "paulino", "rafael", "ramon", "raul", "reinaldo",
        "ricardo", "roberto", "rodrigo", "rogelio", "sebastian", "sergio", "silvio", "simon",
        "valentin", "vicente", "victor", "virgilio", "yolando",
    }
)  # fmt: skip
"""Masculine given names with a feminine form made by ``-a`` (Rafael/Rafaela, Mario/María,
Fernando/Fernanda): a brother and a sister must not read as one person's spelling variants."""

# --- Chinese -------------------------------------------------------------------------------------

CHINESE_SURNAMES: Final = frozenset(
    {
        "ai", "an", "bai", "bao", "bi", "bian", "cai", "cao", "cen", "chang", "chen", "cheng",
        "chi", "chu", "cui", "dai", "deng", "di", "ding", "dong", "dou", "du", "duan", "fan",
        "fang", "fei", "feng", "fu", "gao", "ge", "geng", "gong", "gu", "guan", "guo", "han",
        "hao", "he", "hong", "hou", "hu", "hua", "huang", "ji", "jia", "jiang", "jin", "kang",
        "ke", "kong", "lai", "lan", "lei", "li", "lian", "liang", "liao", "lin", "ling", "liu",
        "long", "lu", "luo", "lv", "ma", "mai", "mao", "meng", "mo", "mu", "ni", "ning",
        "niu", "ou", "ouyang", "pan", "pang", "peng", "qi", "qian", "qiao", "qin", "qiu",
        "qu", "ren", "rong", "ruan", "shao", "shen", "shi", "song", "su", "sun", "tan", "tang",
        "tao", "tian", "wan", "wang", "wei", "wen", "weng", "wu", "xia", "xiang", "xiao",
        "xie", "xiong", "xu", "xue", "yan", "yang", "yao", "ye", "yi", "yin", "you", "yu",
        "yuan", "yue", "zeng", "zhai", "zhan", "zhang", "zhao", "zheng", "zhong", "zhou",
        "zhu", "zhuang", "zou", "zuo",
    }
)  # fmt: skip
"""Mandarin pinyin of the commonest Chinese family names (about nine people in ten)."""

CANTONESE_SURNAMES: Final = {
    "au": ("ou",), "chan": ("chen",), "chau": ("zhou", "qiu"), "cheng": ("zheng",),
    "cheung": ("zhang",), "ching": ("cheng",), "chiu": ("zhao",), "choi": ("cai",),
    "choy": ("cai",), "chow": ("zhou",), "chu": ("zhu",), "chui": ("xu",), "chung": ("zhong",),
    "fan": ("fan",), "fok": ("huo",), "fong": ("fang",), "fung": ("feng",), "ho": ("he",),
    "hui": ("xu",), "hung": ("hong",), "ip": ("ye",), "kam": ("jin",), "kan": ("jian",),
    "ko": ("gao",), "kong": ("jiang",), "kwan": ("guan",), "kwok": ("guo",), "lai": ("li",),
    "lam": ("lin",), "lau": ("liu",), "law": ("luo",), "lee": ("li",), "lei": ("li",),
    "leung": ("liang",), "li": ("li",), "liu": ("liao",), "lo": ("lu", "luo"),
    "lui": ("lei", "lv"), "luk": ("lu",), "mak": ("mai",), "man": ("wen",), "mok": ("mo",),
    "ng": ("wu",), "pang": ("peng",), "poon": ("pan",), "pun": ("pan",), "shek": ("shi",),
    "shum": ("cen",), "sin": ("xian",), "siu": ("xiao",), "so": ("su",), "suen": ("sun",),
    "sung": ("song",), "sze": ("shi",), "szeto": ("situ",), "tai": ("dai",), "tam": ("tan",),
    "tang": ("deng",), "tong": ("tang",), "tsang": ("zeng",), "tse": ("xie",),
    "tsoi": ("cai",), "tsui": ("xu",), "tung": ("dong",), "wai": ("wei",), "wan": ("yin",),
    "wong": ("huang", "wang"), "wu": ("hu", "wu"), "yam": ("ren",), "yau": ("qiu",),
    "yeung": ("yang",), "yip": ("ye",), "yiu": ("yao",), "yu": ("yu", "ru"), "yuen": ("yuan",),
}  # fmt: skip
"""Hong Kong Government (Cantonese) spellings of common family names, with the pinyin of the
characters they usually stand for (Chan/Chen, Wong/Huang or Wang, Ng/Wu)."""

CHINESE_COMPOUND_SURNAMES: Final = frozenset(
    {
        "欧阳", "歐陽", "司马", "司馬", "上官", "诸葛", "諸葛", "东方", "東方", "皇甫", "尉迟",
        "尉遲", "公孙", "公孫", "慕容", "令狐", "夏侯", "长孙", "長孫", "宇文", "司徒", "端木",
        "独孤", "獨孤", "南宫", "南宮", "轩辕", "軒轅", "澹台", "申屠", "闻人", "聞人",
    }
)  # fmt: skip

# --- Burmese -------------------------------------------------------------------------------------

BURMESE_HONORIFICS: Final = frozenset(
    {"u", "daw", "go", "ma", "maung", "saw", "naw", "nang", "se"}
)
"""U, Daw, Ko, Ma, Maung (Mg), Saw, Naw, Nang, Sai: titles of age and sex, written before the
name or left out; compared in the folded form of ``romanise.burmese_fold``, so Ko -> "go",
Mg -> "maung" and Sai -> "se". Only the first word is dropped, and only if a name follows."""

# --- Ethiopian and Eritrean ----------------------------------------------------------------------

ETHIOPIAN_COMPOUND_HEADS: Final = frozenset(
    {
        "wolde", "welde", "walda", "wold", "gebre", "gabre", "ghebre", "gebra", "gabra",
        "tekle", "tekla", "takla", "habte", "habta", "kidane", "kidana", "berhane", "zere",
        "fikre", "ezra",
    }
)  # fmt: skip
"""First halves of compound names written apart or hyphenated (Wolde Mariam = Woldemariam)."""
ETHIOPIAN_COMPOUND_TAILS: Final = frozenset(
    {
        "mariam", "maryam", "selassie", "sellassie", "silassie", "sellase", "giorgis",
        "giyorgis", "michael", "mikael", "gabriel", "yesus", "iyesus", "kristos", "medhin",
        "egziabher", "amlak", "tsion", "tsiyon", "haimanot", "haymanot",
    }
)  # fmt: skip
"""Second halves that make a compound with any first half (Haile Mariam = Hailemariam)."""

# --- Persian -------------------------------------------------------------------------------------

PERSIAN_SUFFIXES: Final = {
    "zadeh": "zadeh", "zade": "zadeh", "zada": "zadeh", "zadah": "zadeh", "pour": "pour",
    "pur": "pour", "nejad": "nejad", "nezhad": "nejad", "nzhad": "nejad", "nejhad": "nejad",
}  # fmt: skip
"""Written joined to the name before in Latin (Karimzadeh) and after a zero-width non-joiner
in Persian script (کریم‌زاده); a separate word (Karim Zadeh) is joined back. The compound is
compared as its stem within its suffix's kind: Malekzadeh and Ghasemzadeh share only
"-zadeh", which says nothing, and Karimi is not Karimzadeh."""

# --- East Slavic ---------------------------------------------------------------------------------

EAST_SLAVIC_GENDERED: Final = {
    "aleksandr": "aleksandra", "aliaksandr": "aliaksandra", "alexander": "alexandra",
    "alexandr": "alexandra", "oleksandr": "oleksandra", "evgeny": "evgenia",
    "evgeniy": "evgeniya", "yevgeny": "yevgenia", "yevgeniy": "yevgeniya", "yauhen": "yauhenia",
    "valentin": "valentina", "valiantsin": "valiantsina", "vladislav": "vladislava",
    "uladzislau": "uladzislava", "yaroslav": "yaroslava", "stanislav": "stanislava",
    "stanislau": "stanislava", "miroslav": "miroslava", "ruslan": "ruslana", "bogdan": "bogdana",
    "viktor": "viktoria", "viktar": "viktoryia", "yulian": "yuliana", "ivan": "ivanna",
    "vasilii": "vasilisa", "anatoly": "anatolia",
}  # fmt: skip
"""Masculine given names and their feminine forms (Aleksandr/Aleksandra): a brother and sister
must not read as spellings of one name. Russian, Belarusian and Ukrainian Latin spellings."""

PATRONYMIC_ENDINGS: Final = ("ovich", "evich", "avich", "ich", "ovych", "ych")
FEMININE_PATRONYMIC_ENDINGS: Final = ("ovna", "evna", "avna", "ichna", "ouna", "euna", "auna",
                                      "ivna")  # fmt: skip
"""Patronymics (Olegovich, Henadzeuna): compared only with patronymics, never with the father's
given name they are made from (a child whose patronymic names the father is another person).
A masculine ending is a patronymic only as the second of three names (Klimovich, Hurynovich
are surnames too)."""

