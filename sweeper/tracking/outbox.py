"""A durable outbox for MLflow writes: nothing is lost while the tracking server is down.

The TrialRecorder never writes to MLflow directly. It appends operations to a
JSONL file on local disk, then drains the file in order; an operation that fails
(server down, timeout) stays, with everything after it, and is retried on the
next trial event, at the end of the sweep, or by `sweeper run --resume`.
Operations name trials by point id, so a run created late still receives every
write meant for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag


class MlflowOutbox:
    def __init__(self, path: Path, client, create_run: Callable[[dict], str], run_ids: dict[str, str]):
        self.path = path
        self.client = client
        self.create_run = create_run  # trial config -> the point's child run id (found or new), params logged
        self.run_ids = run_ids  # point id -> child run id, shared with the recorder
        self.pending: list[dict[str, Any]] = self._load()

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(op) + "\n" for op in self.pending))
        tmp.replace(self.path)  # atomic: a crash leaves the old or the new file, never half of one

    def put(self, op: str, point_id: str, **payload: Any) -> None:
        self.pending.append({"op": op, "point_id": point_id, **payload})
        self._save()
        self.drain()

    def drain(self) -> bool:
        """Apply pending operations in order; True when none is left."""
        done = 0
        try:
            for op in self.pending:
                self._apply(op)
                done += 1
        except Exception:  # noqa: BLE001 - server down or unreachable: keep the rest for later
            pass
        if done:
            self.pending = self.pending[done:]
            self._save()
        return not self.pending

    def drain_until(self, timeout_s: float, wait_s: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.drain():
            if time.monotonic() >= deadline:
                return False
            time.sleep(wait_s)
        return True

    def _apply(self, op: dict[str, Any]) -> None:
        point = op["point_id"]
        if op["op"] == "create":
            # Always find-or-create: a driver killed between creating a run and logging
            # its params left a run without N and D, which this completes.
            self.run_ids[point] = self.create_run(op["config"])
            return
        run_id = self.run_ids[point]
        if op["op"] == "log":
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, ts, step) for k, v, ts, step in op.get("metrics", [])],
                params=[Param(k, v) for k, v in op.get("params", [])],
                tags=[RunTag(k, v) for k, v in op.get("tags", [])],
            )
        elif op["op"] == "end":
            self.client.set_terminated(run_id, op["status"])
