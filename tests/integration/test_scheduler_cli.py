"""``balances scheduler run --once`` and ``balances scheduler status`` on a local store.

With nothing tracked and no price source, no task reads the chain, so no stand-in
is needed: the commands' wiring, output and the shared record are what is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from balances.cli import app

runner = CliRunner()
TASKS = ["sync", "prices", "maintain", "aggregates"]


def test_run_once_runs_every_due_task_and_status_reads_the_shared_record(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    with_aggregates = {"BALANCES_SCHEDULER__AGGREGATE_PERIODS": "30d,1y"}
    ran = runner.invoke(app, ["scheduler", "run", "--once", "--store", store], env=with_aggregates)
    assert ran.exit_code == 0, ran.output
    shown = json.loads(ran.stdout)
    assert [run["task"] for run in shown["runs"]] == TASKS
    assert all(run["ok"] for run in shown["runs"]), shown["runs"]
    assert shown["leader"] is True
    assert shown["runs"][0]["result"]["tracked"] == 0

    status = runner.invoke(app, ["scheduler", "status", "--store", store])
    assert status.exit_code == 0, status.output
    shared = json.loads(status.stdout)
    assert shared["lease_active"] is False  # --once gives the lease up when done
    assert shared["lease"]["owner"] == shown["owner_id"]
    assert [shared["tasks"][task]["runs"] for task in TASKS] == [1, 1, 1, 1]
    assert shared["tasks"]["sync"]["next_run"] > shared["tasks"]["sync"]["last_started"]

    again = runner.invoke(
        app, ["scheduler", "run", "--once", "--store", store], env=with_aggregates
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["runs"] == []  # nothing is due yet


def test_status_of_a_store_where_no_scheduler_ran(tmp_path: Path) -> None:
    status = runner.invoke(app, ["scheduler", "status", "--store", f"file://{tmp_path}"])
    assert status.exit_code == 0, status.output
    shared = json.loads(status.stdout)
    assert (shared["lease"], shared["lease_active"]) == (None, False)
    assert all(task["runs"] == 0 for task in shared["tasks"].values())


def test_aggregates_are_opt_in(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    ran = runner.invoke(app, ["scheduler", "run", "--once", "--store", store])
    assert ran.exit_code == 0, ran.output
    assert [run["task"] for run in json.loads(ran.stdout)["runs"]] == TASKS[:3]
    status = json.loads(runner.invoke(app, ["scheduler", "status", "--store", store]).stdout)
    assert status["tasks"]["aggregates"]["enabled"] is False
    assert status["tasks"]["aggregates"]["next_run"] is None
