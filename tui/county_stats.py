"""The county view's statistics and tasks: computed by ``store/stats.py`` (the same code that
``liudong admin stats`` runs on the county server), re-exported here for the interface and the
commands that import them from this module."""

from __future__ import annotations

from store.stats import (
    COLUMNS,
    PURPOSES,
    UPPER_KINDS,
    FundLedger,
    OrgStats,
    TargetReply,
    TaskView,
    as_row,
    fund_balances,
    is_upper,
    latest_replies,
    open_flows,
    org_stats,
    org_tree,
    percent,
    task_views,
    yuan,
)

__all__ = [
    "COLUMNS", "PURPOSES", "UPPER_KINDS", "FundLedger", "OrgStats", "TargetReply", "TaskView",
    "as_row", "fund_balances", "is_upper", "latest_replies", "open_flows", "org_stats",
    "org_tree", "percent", "task_views", "yuan",
]
