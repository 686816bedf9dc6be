"""The anonymous tracking budget: per client, per sliding minute, off at 0."""

from __future__ import annotations

from balances.api.tracking import AnonymousBudget


def test_a_clients_minute_refills_and_clients_do_not_share_it() -> None:
    now = [0.0]
    budget = AnonymousBudget(per_minute=2, max_tracked=100, clock=lambda: now[0])
    assert [budget.allow("10.0.0.1", 0) for _ in range(3)] == [True, True, False]
    assert budget.allow("10.0.0.2", 0)
    now[0] = 59.9
    assert not budget.allow("10.0.0.1", 0)
    now[0] = 60.1
    assert budget.allow("10.0.0.1", 0)
    assert not AnonymousBudget(per_minute=0, max_tracked=100).allow("10.0.0.1", 0)
