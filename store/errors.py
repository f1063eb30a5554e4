"""Errors for people: every error carries a message in Chinese and in English.

The command line and the interface show ``message(lang)``; neither ever shows a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


def current_lang() -> str:
    """The user's language: ``LIUDONG_LANG`` (``zh`` or ``en``), Chinese by default."""
    lang = os.environ.get("LIUDONG_LANG", "zh").lower()
    return "en" if lang.startswith("en") else "zh"


class LiudongError(Exception):
    """Base of every error the user may see. ``exit_code`` is what the command line returns."""

    exit_code = 1

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en

    def message(self, lang: str | None = None) -> str:
        """One line in the user's language followed by the other language, so both are named."""
        lang = lang or current_lang()
        return f"{self.zh} | {self.en}" if lang == "zh" else f"{self.en} | {self.zh}"


class StoreError(LiudongError):
    """Something about the encrypted store itself."""


class WrongPassphrase(StoreError):
    exit_code = 3

    def __init__(self, what: str = "passphrase") -> None:
        if what == "recovery":
            super().__init__("恢复密钥不正确，无法打开存储", "the recovery key does not open this store")
        else:
            super().__init__("口令不正确，无法打开存储", "wrong passphrase: it does not open this store")


class Corrupted(StoreError):
    exit_code = 4

    def __init__(self, where: str, detail_zh: str, detail_en: str) -> None:
        super().__init__(
            f"存储已损坏：{where} {detail_zh}（请用 liudong doctor 检查，并从备份恢复）",
            f"store is corrupted: {where} {detail_en} (run liudong doctor; restore from a backup)",
        )
        self.where = where


class Locked(StoreError):
    exit_code = 5

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(
            f"存储正被另一个程序使用（{holder}）：{path}",
            f"store is in use by another process ({holder}): {path}",
        )


class StoreNotFound(StoreError):
    exit_code = 6

    def __init__(self, path: str) -> None:
        super().__init__(
            f"找不到存储：{path}（先运行 liudong init）",
            f"no store at {path} (run liudong init first)",
        )


class StoreExists(StoreError):
    exit_code = 2

    def __init__(self, path: str) -> None:
        super().__init__(f"此处已有存储：{path}", f"a store already exists at {path}")


class StoreFailed(StoreError):
    """A write failed half-way; the store refuses further writes until it is reopened."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"写入失败，存储已停止写入，请重新打开：{detail}",
            f"a write failed; the store accepts no more writes until reopened: {detail}",
        )


class UnsafeParameters(StoreError):
    exit_code = 4

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"密钥参数异常，拒绝运行：{detail}",
            f"refusing key-derivation parameters outside safe bounds: {detail}",
        )


class BadRecoveryKey(LiudongError):
    exit_code = 3

    def __init__(self) -> None:
        super().__init__(
            "恢复密钥格式有误或有错字（校验失败）",
            "the recovery key is mistyped (its checksum does not match)",
        )


class NotFound(LiudongError):
    exit_code = 6

    def __init__(self, what_zh: str, what_en: str, key: str) -> None:
        super().__init__(f"找不到{what_zh}：{key}", f"no {what_en} matches {key!r}")


class Ambiguous(LiudongError):
    exit_code = 2

    def __init__(self, key: str, candidates: list[str]) -> None:
        shown = "、".join(candidates[:5])
        super().__init__(
            f"“{key}”匹配多条记录：{shown}；请给出编号",
            f"{key!r} matches several records: {', '.join(candidates[:5])}; give the id",
        )


@dataclass(frozen=True)
class Issue:
    """One broken rule: the field, the rule's id, and the message in both languages."""

    field: str
    rule: str
    zh: str
    en: str


class ValidationError(LiudongError):
    """Input refused. Carries every broken rule; the message names the first and counts the rest."""

    exit_code = 2

    def __init__(self, issues: list[Issue]) -> None:
        assert issues
        self.issues = issues
        first = issues[0]
        more_zh = f"（另有 {len(issues) - 1} 处问题）" if len(issues) > 1 else ""
        more_en = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(first.zh + more_zh, first.en + more_en)

    @property
    def field(self) -> str:
        return self.issues[0].field

    @property
    def rule(self) -> str:
        return self.issues[0].rule


class Forbidden(LiudongError):
    """A write that scope or ownership does not allow (DESIGN §3.3): refused as it is typed,
    with the message the county server would give."""

    exit_code = 2

    def __init__(self, type_name: str, refused: Any) -> None:
        from .scope import refusal_text

        zh, en = refusal_text(type_name, refused)
        super().__init__(zh, en)
        self.code = refused.code
        self.field = refused.field


class BadBackup(StoreError):
    """A backup file that is damaged, truncated, altered or not a backup at all."""

    exit_code = 4

    def __init__(self, where: str, detail_zh: str, detail_en: str) -> None:
        super().__init__(
            f"备份文件无法使用：{where} {detail_zh}（请换用另一份备份）",
            f"unusable backup: {where} {detail_en} (use another copy)",
        )
        self.where = where


class RestoreTargetTaken(StoreExists):
    """The directory to restore into already holds a store, or other files."""

    def __init__(self, path: str, holds_store: bool) -> None:
        if holds_store:
            zh = f"此处已有存储：{path}（恢复不会覆盖已有存储：请另选一个目录，或先把旧存储移走）"
            en = (f"a store already exists at {path} (a restore never overwrites a store: choose "
                  "another directory, or move the old store away first)")
        else:
            zh = f"目标不是空目录：{path}（请另选一个新的或空的目录）"
            en = f"the target is not an empty directory: {path} (choose a new or empty one)"
        LiudongError.__init__(self, zh, en)


class BadBackupTarget(StoreError):
    """Where a backup may not be written."""

    exit_code = 2
