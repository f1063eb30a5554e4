"""Sync errors for people (STYLE: SyncError → Offline, Refused, Revoked)."""

from __future__ import annotations

from store.errors import LiudongError


class SyncError(LiudongError):
    exit_code = 7


class NotEnrolled(SyncError):
    def __init__(self) -> None:
        super().__init__("本设备尚未登记到县级服务器（先运行 liudong enroll）",
                         "this device is not enrolled with a county server (run liudong enroll)")


class Offline(SyncError):
    exit_code = 8

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"无法连接县级服务器 {url}（{detail}）；数据已保存在本机，联网后再同步",
                         f"cannot reach the county server at {url} ({detail}); everything is kept "
                         "on this computer: sync again when the link is back")


class Refused(SyncError):
    exit_code = 9

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(f"县级服务器拒绝了请求：{zh}", f"the county server refused: {en}")
        self.code = code


class Revoked(SyncError):
    exit_code = 10

    def __init__(self) -> None:
        super().__init__("本设备已被县级管理员注销，本机存储的密钥已清除，数据无法再打开",
                         "this device was revoked by the county admin: its keys were erased and "
                         "the store can no longer be opened")


class PinMismatch(SyncError):
    exit_code = 9

    def __init__(self, url: str) -> None:
        super().__init__(f"服务器 {url} 的证书与登记时的不符（可能被冒充），已停止连接",
                         f"the certificate of {url} is not the one pinned at enrollment (it may "
                         "be an impostor); not connecting")


class CannotListen(LiudongError):
    """``liudong serve`` cannot open its listening socket (exit code 12)."""

    exit_code = 12

    def __init__(self, address: str, reason_zh: str, reason_en: str) -> None:
        super().__init__(f"县级服务器无法在 {address} 上监听：{reason_zh}",
                         f"the county server cannot listen on {address}: {reason_en}")
        self.address = address


class Unverified(SyncError):
    """Answers came, but none verified with the county server's key: something else answers at
    its address (a rogue host on the link, a wrong DNS answer). Nothing it said was acted on."""

    exit_code = 9

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} 的回应无法核验（签名不符，可能不是县级服务器），未采纳任何内容，本机数据未受影响",
                         f"the answers from {url} could not be verified (not signed by the county "
                         "server: something else may be answering there); nothing they said was "
                         "acted on and nothing on this computer changed")
