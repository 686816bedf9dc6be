"""The record of every task's runs, shared by all replicas in one blob.

A new leader must not re-run a task another leader has just run: its schedule
(:func:`~balances.scheduler.timing.next_run`) is computed from the *shared* last
start, so the record lives in the blob ``scheduler/state``, a
:class:`~balances.stores.document.SharedDocument` (conditional writes, re-applied
on conflict). A run is written twice: when it starts (so a leader that dies
mid-run is not followed by an immediate second run) and when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from balances.blobs import BlobStore, blob_key
from balances.errors import CorruptBlobError
from balances.stores.document import SharedDocument
from balances.stores.encoding import corrupt, decode_document, encode_document

log = logging.getLogger("balances.scheduler")
KIND = "scheduler-state"
FORMAT = 1
STATE_KEY = blob_key("scheduler", "state")
#: The longest error message kept (the blob is read by every replica).
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class TaskState:
    """What is known of one task's runs (times in unix seconds).

    ``runs`` counts finished runs, ``failures`` the failed ones among them, and
    ``consecutive_failures`` those since the last success (the backoff's input).
    A run in progress has ``last_started`` after ``last_finished``.
    """

    last_started: float | None = None
    last_finished: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    last_result: Mapping[str, Any] = field(default_factory=dict)
    last_owner: str | None = None
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0

    @property
    def running(self) -> bool:
        started, finished = self.last_started, self.last_finished
        return started is not None and (finished is None or finished < started)

    def started(self, at: float, owner: str) -> TaskState:
        return replace(self, last_started=at, last_owner=owner)

    def finished(
        self, started: float, at: float, error: str | None, result: Mapping[str, Any]
    ) -> TaskState:
        """This state after a run that began at ``started`` ended at ``at``."""
        failed = error is not None
        return replace(
            self,
            last_started=started,
            last_finished=at,
            last_duration=max(0.0, at - started),
            last_error=None if error is None else error[:MAX_ERROR_CHARS],
            last_result=dict(result),
            runs=self.runs + 1,
            failures=self.failures + failed,
            consecutive_failures=self.consecutive_failures + 1 if failed else 0,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_started": self.last_started,
            "last_finished": self.last_finished,
            "last_duration": self.last_duration,
            "last_error": self.last_error,
            "last_result": dict(self.last_result),
            "last_owner": self.last_owner,
            "runs": self.runs,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
        }


TaskStates = Mapping[str, TaskState]


def encode_states(states: TaskStates) -> bytes:
    return encode_document(KIND, FORMAT, {"tasks": {k: v.as_dict() for k, v in states.items()}})


def decode_states(data: bytes, where: str) -> TaskStates:
    document = decode_document(data, KIND, FORMAT, where=where)
    try:
        return {str(name): _state(raw) for name, raw in document["tasks"].items()}
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


def _state(raw: Mapping[str, Any]) -> TaskState:
    def seconds(name: str) -> float | None:
        return None if raw.get(name) is None else float(raw[name])

    def text(name: str) -> str | None:
        return None if raw.get(name) is None else str(raw[name])

    return TaskState(
        last_started=seconds("last_started"),
        last_finished=seconds("last_finished"),
        last_duration=seconds("last_duration"),
        last_error=text("last_error"),
        last_result=dict(raw.get("last_result") or {}),
        last_owner=text("last_owner"),
        runs=int(raw.get("runs") or 0),
        failures=int(raw.get("failures") or 0),
        consecutive_failures=int(raw.get("consecutive_failures") or 0),
    )


def _decode_or_forget(data: bytes, where: str) -> TaskStates:
    """A corrupt record is forgotten, not fatal: every task then runs once more (each
    is idempotent) and the next write replaces the blob (conditionally, on its etag)."""
    try:
        return decode_states(data, where)
    except CorruptBlobError as error:
        log.error("starting the task record afresh: %s", error)
        return {}


def state_document(
    blobs: BlobStore, *, clock: Callable[[], float] = time.time, recheck_seconds: float = 60.0
) -> SharedDocument[TaskStates]:
    """The shared ``scheduler/state`` document on ``blobs``."""
    return SharedDocument(
        blobs,
        STATE_KEY,
        empty=dict,
        encode=encode_states,
        decode=_decode_or_forget,
        recheck_seconds=recheck_seconds,
        clock=clock,
    )
