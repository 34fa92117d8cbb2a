"""EventBridge's part in the local mode: Step Functions status-change events delivered to the template's rules.

moto's Step Functions does not emit events, so the world watches its executions and, when one ends, sends the
event AWS would send ("Step Functions Execution Status Change") to the targets of every rule whose pattern
matches it. The targets are the template's own functions, invoked through moto's Lambda like any other.
"""

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

POLL_SECONDS = 0.1
TERMINAL_STATUSES = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# EventBridge events are at most 256 KB: Step Functions leaves the execution's input and output out of its
# status-change event when they would not fit (about 248 KB together), says so in inputDetails/outputDetails,
# and DescribeExecution still has them.
EVENT_DATA_LIMIT_BYTES = 248 * 1024

logger = logging.getLogger(__name__)


class UnsupportedPattern(ValueError):
    """A pattern uses an EventBridge matching feature the local mode does not implement."""


def matches(pattern: dict, event: dict) -> bool:
    """EventBridge matching for exact values: every key of the pattern must match; a list means any of its values."""
    for key, expected in pattern.items():
        value = event.get(key)
        if isinstance(expected, dict):
            if not isinstance(value, dict) or not matches(expected, value):
                return False
        elif isinstance(expected, list):
            if any(isinstance(option, dict) for option in expected):
                raise UnsupportedPattern(f"content filters in {key!r} are not supported by the local mode")
            if value not in expected:
                return False
        else:
            raise UnsupportedPattern(f"pattern values must be lists or objects ({key!r} is not)")
    return True


@dataclass
class Rule:
    name: str
    pattern: dict
    target_arns: list[str]


@dataclass
class Delivery:
    """One event delivered to one target, and what the target answered."""

    rule: str
    target_arn: str
    event: dict
    response: Any = None
    error: str | None = None


def _iso(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def _utf8_size(text: str | None) -> int:
    return len(text.encode()) if text else 0


def status_change_event(description: dict, account: str, region: str) -> dict:
    """The event Step Functions sends to EventBridge when an execution changes status."""
    included = _utf8_size(description.get("input")) + _utf8_size(description.get("output")) <= EVENT_DATA_LIMIT_BYTES
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [description["executionArn"]],
        "detail": {
            "executionArn": description["executionArn"],
            "stateMachineArn": description["stateMachineArn"],
            "name": description["name"],
            "status": description["status"],
            "startDate": _iso(description.get("startDate")),
            "stopDate": _iso(description.get("stopDate")),
            "input": description.get("input") if included else None,
            "inputDetails": {"included": included},
            "output": description.get("output") if included else None,
            "outputDetails": {"included": included},
            "error": description.get("error"),
            "cause": description.get("cause"),
        },
    }


@dataclass
class ExecutionEventBus:
    """Watches a state machine's executions and delivers their status changes to the matching rules' targets."""

    sfn: Any
    state_machine_arn: str
    account: str
    region: str
    invoke: Callable[[str, dict], Any]
    rules: list[Rule] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    # Delivery is best effort on AWS: while set, events are lost instead of delivered (and kept here).
    losing: bool = False
    lost: list[dict] = field(default_factory=list)
    _known: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="local EventBridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def delivered_for(self, execution_arn: str, timeout: float = 30.0) -> list[Delivery]:
        """The deliveries of an ended execution's events, once they are made (waits at most `timeout`)."""
        with self._idle:
            self._idle.wait_for(lambda: self._known.get(execution_arn) in TERMINAL_STATUSES, timeout=timeout)
            return [delivery for delivery in self.deliveries if delivery.event["resources"] == [execution_arn]]

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self._deliver_changes()
            except Exception:  # noqa: BLE001 -- a watcher that dies silently would hide every later event
                logger.exception("local EventBridge: watching executions failed")

    def _deliver_changes(self) -> None:
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
        for page in pages:
            for execution in page["executions"]:
                arn, status = execution["executionArn"], execution["status"]
                if self._known.get(arn) == status:
                    continue
                if status in TERMINAL_STATUSES:
                    self._deliver(status_change_event(self.sfn.describe_execution(executionArn=arn), self.account,
                                                      self.region))
                with self._idle:
                    self._known[arn] = status
                    self._idle.notify_all()

    def _deliver(self, event: dict) -> None:
        if self.losing:
            self.lost.append(event)
            return
        for rule in self.rules:
            if not matches(rule.pattern, event):
                continue
            for target in rule.target_arns:
                delivery = Delivery(rule=rule.name, target_arn=target, event=event)
                try:
                    delivery.response = self.invoke(target, event)
                except Exception as error:  # noqa: BLE001 -- recorded and logged, as EventBridge's DLQ would keep it
                    delivery.error = f"{type(error).__name__}: {error}"
                    logger.exception("local EventBridge: delivery to %s failed", target)
                self.deliveries.append(delivery)


def lambda_invoker(lambda_client: Any) -> Callable[[str, dict], Any]:
    """Invoke a function as EventBridge does and return its answer (raise if the function failed)."""

    def invoke(function_arn: str, event: dict) -> Any:
        response = lambda_client.invoke(FunctionName=function_arn, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"{function_arn} failed: {payload}")
        return payload

    return invoke
