"""Search keys for members: name, full pinyin, pinyin initials, phone, ID-number suffix.

``zs``, ``zhangsan``, ``zhang`` and ``张三`` all find 张三. Surnames are read as surnames
(单 shan, 曾 zeng, 解 xie, 区 ou …) and also by their everyday reading, since people type both.
Keys are computed once per edit and kept in the snapshot, because pinyin conversion of 20,000
names costs about half a second, too much for every unlock.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterable, Mapping
from typing import Any

# Surnames whose reading as a surname differs from the character's everyday reading.
# Compound surnames first: they are matched before single characters.
SURNAMES: dict[str, tuple[str, ...]] = {
    # 单于 (chanyu) is left out: a modern 单于X is surname 单 with a given name 于X.
    "万俟": ("mo", "qi"), "尉迟": ("yu", "chi"), "长孙": ("zhang", "sun"),
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


def _readings(text: str, alternates: int) -> list[list[str]]:
    """Syllable sequences for ``text``: the common reading first, then, for characters with
    several readings in names (长 zhang/chang, 重 zhong/chong, 乐 le/yue), the second reading,
    at most ``alternates`` sequences in all."""
    # Imported on first use. Names are read character by character, so pypinyin's phrase table
    # (130 ms to load, a third of a command's start-up) is skipped.
    os.environ.setdefault("PYPINYIN_NO_PHRASES", "true")
    from pypinyin import Style, pinyin

    per_char = [[s.lower() for s in options[:2]] for options in pinyin(
        text, style=Style.NORMAL, heteronym=True, errors=lambda chars: [[c] for c in chars])]
    return [list(seq) for seq in itertools.islice(itertools.product(*per_char), alternates)]


def _variants(syllables: list[str]) -> list[list[str]]:
    """ü is typed as v on Chinese keyboards and as u elsewhere: lv, lu and lü all find 吕."""
    if not any("v" in s or "ü" in s for s in syllables):
        return [syllables]
    out = []
    for repl in ("v", "u"):
        out.append([s.replace("ü", repl).replace("v", repl) for s in syllables])
    return out


def name_readings(name: str) -> list[list[str]]:
    """Possible syllable sequences for a name: the surname as a surname first (单 shan), then
    its everyday reading (dan), each with the given name's likely readings; at most eight."""
    name = name.strip()
    if not name:
        return []
    head_len = next((n for n in (2, 1) if len(name) >= n and name[:n] in SURNAMES), 0)
    heads = [list(SURNAMES[name[:head_len]])] if head_len else []
    heads += _readings(name[:head_len] or name[:1], 1)
    head_len = head_len or 1
    rest = _readings(name[head_len:], 4) if len(name) > head_len else [[]]
    unique: list[list[str]] = []
    for h in heads:
        for r in rest:
            for v in _variants(h + r):
                if v not in unique:
                    unique.append(v)
    return unique[:8]


# Bump when member_keys changes: stores rebuild their keys on open (State.upgrade).
SEARCH_VERSION = 3


KEY_FIELDS = frozenset({"name", "phone", "id_number"})  # the fields member_keys reads


@functools.lru_cache(maxsize=8192)
def _name_keys(name: str) -> tuple[str, ...]:
    parts = [name.lower()]
    for syllables in name_readings(name):
        parts.append("".join(syllables))
        parts.append("".join(s[0] for s in syllables if s))
    return tuple(parts)


def member_keys(doc: Mapping[str, Any]) -> str:
    """One lower-case string holding every key of a member, separated by NUL.

    The ID number is marked ``#…$`` and matched only at its end: people search by a suffix or
    the whole number, and a fragment such as "1101" must not match every member born in
    Beijing's districts.
    """
    parts: list[str] = []
    name = str(doc.get("name") or "")
    if name:
        parts.extend(_name_keys(name))
    if doc.get("phone"):
        parts.append(str(doc["phone"]))
    if doc.get("id_number"):
        parts.append("#" + str(doc["id_number"]).lower() + "$")
    return "\0".join(parts)


def _words(query: str) -> list[str]:
    # lü is kept as lv (and lu) in the keys; NUL, # and $ are the keys' own separators
    return [w for w in query.lower().replace("ü", "v").split() if not set(w) & {"\0", "#", "$"}]


def _is_number(word: str) -> bool:
    return word.isdigit() or (word.endswith("x") and word[:-1].isdigit())


def _number_matches(keys: str, word: str) -> bool:
    """Digits match a phone anywhere but an ID number only at its end. The ID number is the
    last key (``member_keys``): everything before it is searched as one string, without
    splitting (a query of one digit passes the first test for nearly every member: 75 ms at
    20,000 members with a split, 6–20 ms without)."""
    if keys.endswith(word + "$"):
        return True
    cut = 0 if keys.startswith("#") else keys.rfind("\0#")
    return word in (keys if cut < 0 else keys[:cut])


def matches(keys: str, query: str) -> bool:
    """Does a query match a member's keys? All space-separated words must match."""
    words = _words(query)
    return all(w in keys and (not _is_number(w) or _number_matches(keys, w)) for w in words)


def filter_ids(index: Mapping[str, str], query: str, ids: Iterable[str] | None = None) -> list[str]:
    """Ids whose keys match ``query``; ``ids`` restricts and orders the candidates.

    The substring test runs first for every word: it is one C-level scan per member, and the
    exact test for numbers runs only on the few members it lets through."""
    words = _words(query)
    if not words:
        return list(ids if ids is not None else index)
    items = index.items() if ids is None else ((i, index.get(i, "")) for i in ids)
    numbers = [w for w in words if _is_number(w)]
    if len(words) == 1:
        w = words[0]
        if numbers:
            return [i for i, k in items if w in k and _number_matches(k, w)]
        return [i for i, k in items if w in k]
    return [i for i, k in items if all(w in k for w in words)
            and all(_number_matches(k, n) for n in numbers)]
