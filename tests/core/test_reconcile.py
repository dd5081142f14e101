"""The pure reconcile rules: the retention window, the invoice file, and what the merged
result's exit code says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from seedance_pipeline.core.reconcile import (
    WINDOW_MARGIN,
    Finding,
    InvoiceError,
    InvoiceReconcile,
    RouteReconcile,
    merge,
    parse_invoice,
    window,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_the_window_starts_at_the_retention_edge_or_later() -> None:
    edge = window(NOW, DAY, None)
    assert (edge.start, edge.floor) == (NOW - DAY, NOW - DAY - WINDOW_MARGIN)
    assert edge.judged_after == NOW - DAY + WINDOW_MARGIN and edge.note is None
    later = window(NOW, DAY, NOW - timedelta(hours=3))
    assert later.start == later.judged_after == NOW - timedelta(hours=3)
    earlier = window(NOW, DAY, NOW - timedelta(days=9))
    assert earlier.start == NOW - DAY
    assert earlier.note is not None and "keeps tasks 24 h" in earlier.note


def test_a_malformed_invoice_names_the_line() -> None:
    with pytest.raises(InvoiceError, match=r"bad\.csv line 3"):
        parse_invoice(
            "date,model,tokens,amount,currency\n2026-11-01,m,100,0.1,USD\n2026-11-02,x,lots,1,USD\n",
            "bad.csv",
        )
    with pytest.raises(InvoiceError, match="header lacks date, amount, currency"):
        parse_invoice("day,model,tokens\n", "nohead.csv")
    with pytest.raises(InvoiceError, match="line 2: model and currency are required"):
        parse_invoice("date,model,tokens,amount,currency\n2026-11-01,,1,0.1,USD\n", "x.csv")


def test_invoice_columns_in_any_order_and_thousands_separators() -> None:
    [line] = parse_invoice(
        'currency,amount,Model,tokens,date\nusd,"1,234.5",m,"2,000",2026-11-03\n', "x"
    )
    assert (line.currency, line.amount, line.tokens) == ("USD", Decimal("1234.5"), 2000)


def test_exit_codes_of_the_merged_result() -> None:
    checked = RouteReconcile(route="byteplus", checked=True)
    assert merge([checked], None, Decimal("0.01")).exit_code == 0
    skipped = RouteReconcile(route="volcengine", notes=["no key"])
    assert merge([checked, skipped], None, Decimal("0.01")).exit_code == 0
    blind = merge([skipped], None, Decimal("0.01"))
    assert blind.exit_code == 2 and "no route has an API key" in blind.findings[0].message
    orphan = Finding(kind="orphan", message="task t belongs to no job")
    unchecked = Finding(kind="unchecked", message="route x: no key")
    both = RouteReconcile(route="byteplus", checked=True, findings=[orphan, unchecked])
    assert merge([both], None, Decimal("0.01")).exit_code == 1
    invoice_only = merge([], InvoiceReconcile(notes=["nothing compared"]), Decimal("0.01"))
    assert invoice_only.exit_code == 0 and invoice_only.notes == ["nothing compared"]
