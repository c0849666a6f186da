"""Invented but GADM-looking attributes: codes, names, types.

Names are built from syllables drawn with the caller's generator, so they
are deterministic. ``NAME_n`` is Latin script (with accents in some
countries), ``NL_NAME_n`` is the local script (Cyrillic, Arabic, CJK or an
accented Latin form), ``VARNAME_n`` an alternative spelling.
"""

from __future__ import annotations

import unicodedata

import numpy as np

SYLLABLES = (
    "ka ri mon tel sa vor an de li bu zen ta or mi ne gal pe ru ste vik "
    "ba lo ma ni ko su ra te ho la ve do ga mu si jo ke fa no pa qui tor "
    "lan bor dar hal kir mar nor sel tam ur val wen yar zu ost "
    "ber cha dri el fen gor "
).split()

SCRIPTS = ("latin", "cyrillic", "arabic", "cjk")

_ACCENTS = {"a": "áàâãäå", "e": "éèêë", "i": "íîï", "o": "óôöõø",
            "u": "úûü", "n": "ñ", "c": "ç", "s": "š", "z": "ž"}

_CYR = {"a": "а", "b": "б", "c": "ц", "d": "д", "e": "е", "f": "ф", "g": "г",
        "h": "х", "i": "и", "j": "й", "k": "к", "l": "л", "m": "м", "n": "н",
        "o": "о", "p": "п", "q": "к", "r": "р", "s": "с", "t": "т", "u": "у",
        "v": "в", "w": "в", "y": "ы", "z": "з"}
_ARA = {"a": "ا", "b": "ب", "c": "ك", "d": "د", "e": "ي", "f": "ف", "g": "غ",
        "h": "ه", "i": "ي", "j": "ج", "k": "ك", "l": "ل", "m": "م", "n": "ن",
        "o": "و", "p": "ب", "q": "ق", "r": "ر", "s": "س", "t": "ت", "u": "و",
        "v": "ف", "w": "و", "y": "ي", "z": "ز"}
# One CJK ideograph per syllable (deterministic, from the unified block).
_CJK = {s: chr(0x4E00 + (i * 467 + 1031) % 20900) for i, s in enumerate(SYLLABLES)}

PREFIXES = ("San ", "Nova ", "Alt ", "Port ", "Saint-", "Nizhny ", "Al-", "Bad ")

TYPES = {
    1: [("Province", "Province"), ("Región", "Region"), ("Oblast'", "Region"),
        ("État", "State"), ("Muhafazah", "Governorate"), ("Shěng", "Province"),
        ("Bundesland", "State"), ("Voivodeship", "Province")],
    2: [("District", "District"), ("Département", "Department"), ("Raion", "District"),
        ("Kreis", "District"), ("Municipio", "Municipality"), ("Xiàn", "County"),
        ("Mintaqah", "District"), ("County", "County")],
    3: [("Commune", "Commune"), ("Sub-district", "Sub-district"),
        ("Gemeinde", "Municipality"), ("Tehsil", "Sub-district"),
        ("Arrondissement", "Arrondissement"), ("Xiāng", "Township")],
    4: [("Village", "Village"), ("Ward", "Ward"), ("Canton", "Canton"),
        ("Barangay", "Village"), ("Sector", "Sector")],
    5: [("Cell", "Cell"), ("Quarter", "Quarter"), ("Hamlet", "Hamlet")],
}
MINOR_TYPES = [("City", "City"), ("Urban District", "Urban district"),
               ("Water body", "Water body")]

CONTINENTS = ("Asia", "Europe", "Africa", "North America", "South America",
              "Oceania", "Antarctica")
SUBREGIONS = ("Northern", "Southern", "Eastern", "Western", "Central")


def ascii_fold(s: str) -> str:
    """Latin letters without diacritics (for HASC/ISO codes)."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", s)
                   if ord(ch) < 128)


def _accent(word: str, rng_u: float, rng_pos: int) -> str:
    """Replace one letter of `word` by an accented form (if it has one)."""
    cand = [i for i, ch in enumerate(word) if ch.lower() in _ACCENTS]
    if not cand:
        return word
    i = cand[rng_pos % len(cand)]
    forms = _ACCENTS[word[i].lower()]
    ch = forms[int(rng_u * len(forms)) % len(forms)]
    return word[:i] + (ch.upper() if word[i].isupper() else ch) + word[i + 1:]


class NameMaker:
    """Names for one country (its script and accent habit)."""

    def __init__(self, rng: np.random.Generator, script: str, accent_rate: float):
        self.rng = rng
        self.script = script
        self.accent_rate = accent_rate

    def names(self, n: int) -> tuple[list[str], list[str], list[str]]:
        """(NAME, NL_NAME, VARNAME) for `n` units."""
        rng = self.rng
        nsyl = rng.integers(2, 4, n)
        syl = rng.integers(0, len(SYLLABLES), (n, 3))
        pre = rng.random(n)
        pre_i = rng.integers(0, len(PREFIXES), n)
        acc = rng.random(n)
        acc_u = rng.random(n)
        acc_p = rng.integers(0, 8, n)
        var_kind = rng.integers(0, 3, n)
        names, local, variants = [], [], []
        for i in range(n):
            parts = [SYLLABLES[j] for j in syl[i, : nsyl[i]]]
            base = "".join(parts).capitalize()
            name = base
            if pre[i] < 0.08:
                name = PREFIXES[pre_i[i]] + base
            elif pre[i] > 0.95:
                name = base + "-" + SYLLABLES[syl[i, 2]].capitalize()
            if acc[i] < self.accent_rate:
                name = _accent(name, acc_u[i], int(acc_p[i]))
            if self.script == "cyrillic":
                nl = "".join(_CYR.get(ch, ch) for ch in name.lower()).capitalize()
            elif self.script == "arabic":
                nl = "".join(_ARA.get(ch, ch) for ch in ascii_fold(name).lower())
            elif self.script == "cjk":
                nl = "".join(_CJK[p] for p in parts)
            else:
                nl = _accent(name, 1.0 - acc_u[i], int(acc_p[i]) + 1)
            if var_kind[i] == 0:
                var = ascii_fold(name)
            elif var_kind[i] == 1:
                var = name + "|" + base.replace("k", "c").replace("v", "w")
            else:
                var = base[:-1] + ("a" if base[-1] != "a" else "e")
            names.append(name)
            local.append(nl)
            variants.append(var)
        return names, local, variants


def types(rng: np.random.Generator, level: int, n: int) -> tuple[list[str], list[str]]:
    """(TYPE_n, ENGTYPE_n): one main type per country and level, a few others."""
    main = TYPES[level][int(rng.integers(0, len(TYPES[level])))]
    minor = rng.random(n) < 0.06
    mi = rng.integers(0, len(MINOR_TYPES), n)
    t = [MINOR_TYPES[mi[i]] if minor[i] else main for i in range(n)]
    return [a for a, _ in t], [b for _, b in t]


def country_codes(rng: np.random.Generator, n: int, n_disputed: int) -> list[str]:
    """`n` distinct ISO-like codes, the last `n_disputed` being Z01, Z02, ..."""
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXY"))  # no Z: Z.. are disputed
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < n - n_disputed:
        c = "".join(letters[rng.integers(0, len(letters), 3)])
        if c not in seen:
            seen.add(c)
            codes.append(c)
    return codes + [f"Z{i:02d}" for i in range(1, n_disputed + 1)]
