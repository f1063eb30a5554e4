"""Search keys for members: name, full pinyin, pinyin initials, phone, ID-number suffix.

``zs``, ``zhangsan``, ``zhang`` and ``张三`` all find 张三. Surnames are read as surnames
(单 shan, 曾 zeng, 解 xie, 区 ou …) and also by their everyday reading, since people type both.
Keys are computed once per edit and kept in the snapshot, because pinyin conversion of 20,000
names costs about half a second, too much for every unlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Surnames whose reading as a surname differs from the character's everyday reading.
# Compound surnames first: they are matched before single characters.
SURNAMES: dict[str, tuple[str, ...]] = {
    "万俟": ("mo", "qi"), "尉迟": ("yu", "chi"), "长孙": ("zhang", "sun"), "单于": ("chan", "yu"),
    "澹台": ("tan", "tai"), "令狐": ("ling", "hu"), "宇文": ("yu", "wen"), "欧阳": ("ou", "yang"),
    "单": ("shan",), "曾": ("zeng",), "解": ("xie",), "仇": ("qiu",), "区": ("ou",),
    "查": ("zha",), "朴": ("piao",), "覃": ("qin",), "翟": ("zhai",), "盖": ("ge",),
    "乐": ("yue",), "缪": ("miao",), "繁": ("po",), "种": ("chong",), "员": ("yun",),
    "召": ("shao",), "秘": ("bi",), "隗": ("wei",), "句": ("gou",), "折": ("she",),
    "冼": ("xian",), "尉": ("yu",), "褚": ("chu",), "阚": ("kan",), "沈": ("shen",),
    "祭": ("zhai",), "牟": ("mou",), "那": ("na",), "华": ("hua",), "任": ("ren",),
    "宁": ("ning",), "过": ("guo",), "藏": ("zang",), "校": ("xiao",), "燕": ("yan",),
    "纪": ("ji",), "靓": ("jing",), "莘": ("shen",), "眭": ("sui",), "能": ("nai",),
    "黑": ("he",), "柏": ("bai",), "卜": ("bu",), "薄": ("bo",), "都": ("du",), "葛": ("ge",),
    "贲": ("ben",), "郇": ("huan",), "洗": ("xian",), "粘": ("nian",), "谌": ("chen",),
    "叶": ("ye",), "石": ("shi",), "曲": ("qu",), "相": ("xiang",), "朝": ("chao",),
}


def _lazy_pinyin(text: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin  # imported on first use: pypinyin loads large tables

    return [s.lower() for s in lazy_pinyin(text, style=Style.NORMAL, v_to_u=False,
                                           errors=lambda chars: list(chars))]


def _variants(syllables: list[str]) -> list[list[str]]:
    """ü is typed as v on Chinese keyboards and as u elsewhere: lv, lu and lü all find 吕."""
    if not any("v" in s or "ü" in s for s in syllables):
        return [syllables]
    out = []
    for repl in ("v", "u"):
        out.append([s.replace("ü", repl).replace("v", repl) for s in syllables])
    return out


def name_readings(name: str) -> list[list[str]]:
    """Possible syllable sequences for a name: surname reading(s) first, at most four variants."""
    name = name.strip()
    if not name:
        return []
    rest_start, surname_readings = 0, []
    for length in (2, 1):
        head = name[:length]
        if len(name) > length - 1 and head in SURNAMES:
            rest_start = length
            surname_readings.append(list(SURNAMES[head]))
            surname_readings.append(_lazy_pinyin(head))
            break
    if rest_start == 0:
        readings = [_lazy_pinyin(name)]
    else:
        rest = _lazy_pinyin(name[rest_start:]) if len(name) > rest_start else []
        readings = [s + rest for s in surname_readings]
    unique: list[list[str]] = []
    for r in readings:
        for v in _variants(r):
            if v not in unique:
                unique.append(v)
    return unique[:4]


def member_keys(doc: Mapping[str, Any]) -> str:
    """One lower-case string holding every key of a member, separated by NUL.

    The ID number is held only as its last six characters: people search by suffix, and a
    full number in the index would let "1101" match every member born in Beijing's districts.
    """
    parts: list[str] = []
    name = str(doc.get("name") or "")
    if name:
        parts.append(name.lower())
        for syllables in name_readings(name):
            parts.append("".join(syllables))
            parts.append("".join(s[0] for s in syllables if s))
    if doc.get("phone"):
        parts.append(str(doc["phone"]))
    if doc.get("id_number"):
        parts.append("#" + str(doc["id_number"])[-6:].lower() + "$")
    return "\0".join(parts)


def matches(keys: str, query: str) -> bool:
    """Does a query match a member's keys? All space-separated words must match."""
    return all(_word_matches(keys, w) for w in query.lower().split())


def _word_matches(keys: str, word: str) -> bool:
    if word in keys and "\0" not in word:
        # A digit-only word may match the phone anywhere, and the ID number only at its end.
        if not word.isdigit() and not word.endswith("x"):
            return True
        return any(
            (part.startswith("#") and part.endswith(word + "$")) or
            (not part.startswith("#") and word in part)
            for part in keys.split("\0")
        )
    return False


def filter_ids(index: Mapping[str, str], query: str, ids: Iterable[str] | None = None) -> list[str]:
    """Ids whose keys match ``query``; ``ids`` restricts and orders the candidates."""
    words = query.lower().split()
    if not words:
        return list(ids if ids is not None else index)
    candidates = ids if ids is not None else index.keys()
    plain = [w for w in words if not (w.isdigit() or w.endswith("x"))]
    if len(plain) == len(words):
        # fast path: substring tests only, no splitting
        return [i for i in candidates if all(w in index.get(i, "") for w in plain)]
    return [i for i in candidates if matches(index.get(i, ""), query)]

