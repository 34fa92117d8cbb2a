"""Run moto's Lambda invocations in this process, with our real handlers.

moto hands every invocation to `LambdaFunction._invoke_lambda(self, event)`, which would start a Docker
container and returns `(payload_json, errored, logs)`. That private method is the one seam: it is replaced for the
lifetime of a local world by a call of the handler named by the function's configuration. moto is pinned exactly in
pyproject.toml and tests/local/test_lambda_seam.py fails loudly if the seam moves.

Invocations are not serialized: concurrent executions really call handlers at the same time, as Lambda would.
The functions' environment is not applied here but once for the whole world (see world.py), as handlers read it
at call time and run in one process.

Within `invocation_delays`, each invocation also waits a random while before its handler runs and after it
returns, as Lambda's invocations take unequal times (cold starts, scheduling, the network): concurrent executions'
steps then interleave in orders that even timing would not give.

Each function's timeout is enforced as Lambda enforces it: an invocation still running at its deadline fails with
Lambda's timeout error (`Sandbox.Timedout`, see `timed_out_payload`) and is stopped. Lambda stops the whole
sandbox; in one process the handler's thread is stopped by an exception raised into it at its next Python
instruction (`SandboxStopped`, which `except Exception` does not catch). Work the handler handed to threads of its
own, or a call blocked in C, runs on until it returns to Python: tests keep such work shorter than the timeout.
"""

import ctypes
import importlib
import inspect
import json
import random
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from moto.awslambda.models import LambdaFunction


SEAM_NAME = "_invoke_lambda"
SEAM_PARAMETERS = ["self", "event"]


class SeamMoved(RuntimeError):
    """moto no longer offers the method the local mode replaces."""


def check_seam() -> None:
    """Raise SeamMoved with what changed if moto's invocation method is not the one the seam replaces."""
    method = getattr(LambdaFunction, SEAM_NAME, None)
    if method is None:
        raise SeamMoved(
            f"moto.awslambda.models.LambdaFunction.{SEAM_NAME} no longer exists: the local mode cannot run "
            "handlers in-process with this moto version; keep moto pinned to the version in pyproject.toml"
        )
    parameters = list(inspect.signature(method).parameters)
    if parameters != SEAM_PARAMETERS:
        raise SeamMoved(
            f"moto.awslambda.models.LambdaFunction.{SEAM_NAME} now takes ({', '.join(parameters)}), the local "
            f"mode expects ({', '.join(SEAM_PARAMETERS)}): check what it returns and adapt lambda_seam.py"
        )


@dataclass
class LocalLambdaContext:
    """What powertools and our handlers read from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic, init=False, repr=False)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def handler_name(function: LambdaFunction) -> str:
    """The "module.function" to call: the zip function's Handler, or an image function's CMD."""
    if function.handler:
        return function.handler
    if function.image_config.cmd:
        return function.image_config.cmd[0]
    raise ValueError(f"function {function.function_name} names no handler (no Handler, no ImageConfig.Command)")


def load_handler(name: str) -> Callable:
    module_name, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


# The error type Lambda's Invoke answers (FunctionError "Unhandled") for an invocation that ran out of time, and
# the error Step Functions then reports for the task (older runtimes' answers carried no type: Lambda.Unknown).
# The Lambda Developer Guide names it ("Troubleshoot invocation issues in Lambda": Sandbox.Timedout).
TIMED_OUT_ERROR = "Sandbox.Timedout"


class SandboxStopped(BaseException):
    """Raised into a handler's thread at its function's timeout: Lambda stops the sandbox, no handler catches it."""


def timed_out_payload(request_id: str, timeout_seconds: float) -> dict:
    """What Lambda answers for an invocation that reached its function's timeout."""
    return {"errorType": TIMED_OUT_ERROR,
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_seconds:.2f} seconds"}


class InvocationDelays:
    """Random waits of up to `max_seconds`; `seed` varies them from one run to another (the threads' own timing still
    decides which invocation draws which)."""

    def __init__(self, max_seconds: float, seed: int):
        self.max_seconds = max_seconds
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            seconds = self._random.uniform(0, self.max_seconds)
        time.sleep(seconds)


_delays: InvocationDelays | None = None


@contextmanager
def invocation_delays(max_seconds: float, seed: int) -> Iterator[None]:
    """Delay every invocation, before and after its handler, by up to `max_seconds` each, for the block."""
    global _delays
    _delays = InvocationDelays(max_seconds, seed)
    try:
        yield
    finally:
        _delays = None


@dataclass
class _Invocation:
    """One handler call on its own thread, so that its caller can give up on it at the deadline."""

    handler: str  # "module.function"
    event: object
    context: LocalLambdaContext
    done: threading.Event = field(default_factory=threading.Event)
    answer: tuple[str, bool, str] = ("null", False, "")

    def run(self) -> None:
        delays = _delays
        try:
            if delays:
                delays.wait()
            try:
                result = load_handler(self.handler)(self.event, self.context)
                self.answer = (json.dumps(result), False, "")
            except Exception as error:  # noqa: BLE001 -- Lambda reports any exception as the invocation's error
                payload = {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_tb(error.__traceback__.tb_next),
                }
                self.answer = (json.dumps(payload), True, "".join(traceback.format_exception(error)))
            if delays:
                delays.wait()
        except SandboxStopped:
            return
        finally:
            self.done.set()


def _stop_thread(thread: threading.Thread) -> None:
    """Raise SandboxStopped in `thread` at its next Python instruction."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SandboxStopped))


def _invoke_in_process(self: LambdaFunction, event: object = None) -> tuple[str, bool, str]:
    context = LocalLambdaContext(
        function_name=self.function_name,
        memory_limit_in_mb=int(self.memory_size),
        invoked_function_arn=self.function_arn,
        timeout_seconds=int(self.timeout),
    )
    invocation = _Invocation(handler_name(self), event if event is not None else {}, context)
    thread = threading.Thread(target=invocation.run, name=f"lambda {self.function_name}", daemon=True)
    thread.start()
    if invocation.done.wait(context.timeout_seconds):
        return invocation.answer
    _stop_thread(thread)
    payload = timed_out_payload(context.aws_request_id, context.timeout_seconds)
    return json.dumps(payload), True, payload["errorMessage"]


@contextmanager
def in_process_lambdas() -> Iterator[None]:
    """Replace moto's Docker invocation by an in-process handler call for the duration of the block."""
    check_seam()
    original = getattr(LambdaFunction, SEAM_NAME)
    setattr(LambdaFunction, SEAM_NAME, _invoke_in_process)
    try:
        yield
    finally:
        setattr(LambdaFunction, SEAM_NAME, original)
