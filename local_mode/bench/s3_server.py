"""A moto server on loopback that counts the S3 requests it answers, run in a child process.

The server gets its own process (and so its own GIL): our steps (in the benchmark's process) and the AWS CLI (in
its own) are both clients from elsewhere, as a Lambda function and a CI job are to S3. The child serves until told to stop, or until the benchmark
process goes away (its end of the pipe closes).
"""

import logging
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from urllib.parse import parse_qs

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 60
REPLY_TIMEOUT_SECONDS = 30

# Object sub-resources a request may name, as the S3 API reference names the operations on them.
_OBJECT_SUBRESOURCES = {"tagging": "ObjectTagging", "acl": "ObjectAcl", "retention": "ObjectRetention",
                        "legal-hold": "ObjectLegalHold", "attributes": "ObjectAttributes"}


def signing_service(environ: dict) -> str | None:
    """The service a SigV4-signed request is for, from its credential scope (key/date/region/service/...)."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = authorization.split(",")[0].split()[1]
        return scope.split("/")[3].lower()
    except IndexError:
        return None


def s3_operation(environ: dict) -> str:
    """The S3 API operation of a path-style request (what the server is asked, not what the client called)."""
    method = environ["REQUEST_METHOD"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    on_object = "/" in environ.get("PATH_INFO", "").strip("/")
    if on_object:
        if method == "PUT" and "HTTP_X_AMZ_COPY_SOURCE" in environ:
            return "UploadPartCopy" if "partNumber" in query else "CopyObject"
        for subresource, noun in _OBJECT_SUBRESOURCES.items():
            if subresource in query:
                verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method)
                return verb + noun
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
            method, f"{method} object"
        )
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "GET" and query.get("list-type") == ["2"]:
        return "ListObjectsV2"
    if method == "GET" and "versions" in query:
        return "ListObjectVersions"
    subresources = "&".join(sorted(query))
    return f"{method} bucket{'?' + subresources if subresources else ''}"


@dataclass(frozen=True)
class ServerUsage:
    """What the server did between two takes: the S3 requests it answered, and the CPU time it used."""

    requests: dict[str, int]
    cpu_seconds: float


class S3RequestCounter:
    """WSGI middleware: counts the S3 requests that reach the wrapped app, by operation."""

    def __init__(self, app: Callable):
        self.app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if signing_service(environ) == "s3":
            operation = s3_operation(environ)
            with self._lock:
                self._counts[operation] += 1
        return self.app(environ, start_response)

    def take(self) -> dict[str, int]:
        """The counts since the last take, and start counting afresh."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts


def _serve(connection: Connection) -> None:
    """The child process: a ThreadedMotoServer on a free loopback port, answering commands on the pipe."""
    from moto.server import ThreadedMotoServer

    # Werkzeug logs every request to stderr unless its logger is configured: thousands of lines per run.
    werkzeug_logger = logging.getLogger("werkzeug")
    werkzeug_logger.addHandler(logging.NullHandler())
    werkzeug_logger.setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    # ThreadedMotoServer builds its WSGI app inside its thread; werkzeug's server calls `server.app` for every
    # request, so wrapping it before the first request sees them all.
    wsgi_server = getattr(server, "_server", None)
    if wsgi_server is None or not callable(getattr(wsgi_server, "app", None)):
        connection.send(("error", "moto's ThreadedMotoServer no longer exposes its werkzeug server as _server"))
        server.stop()
        return
    counter = S3RequestCounter(wsgi_server.app)
    wsgi_server.app = counter
    connection.send(("ready", server.get_host_and_port()[1]))
    cpu_seconds = time.process_time()
    try:
        while True:
            command = connection.recv()
            if command == "take":
                previous, cpu_seconds = cpu_seconds, time.process_time()
                connection.send(ServerUsage(requests=counter.take(), cpu_seconds=cpu_seconds - previous))
            elif command == "stop":
                break
    except EOFError:
        pass  # the benchmark process is gone
    finally:
        server.stop()
        connection.close()


class CountingS3Server:
    """Start with `with CountingS3Server() as server:`; `server.endpoint_url`, `server.take_usage()`."""

    def __init__(self) -> None:
        self.port = 0
        self._connection: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> "CountingS3Server":
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end,), name="bench-moto-server", daemon=True)
        self._process.start()
        child_end.close()
        self._connection = parent_end
        try:
            status, detail = self._receive(START_TIMEOUT_SECONDS)
            if status != "ready":
                raise RuntimeError(f"the moto server did not start: {detail}")
        except BaseException:
            self.__exit__()
            raise
        self.port = detail
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            try:
                self._connection.send("stop")
            except (BrokenPipeError, OSError):
                pass
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(REPLY_TIMEOUT_SECONDS)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()
            self._process = None

    def take_usage(self) -> ServerUsage:
        """What the server did since the last call."""
        assert self._connection is not None, "use the server as a context manager"
        self._connection.send("take")
        return self._receive(REPLY_TIMEOUT_SECONDS)

    def _receive(self, timeout: float):
        assert self._connection is not None
        if not self._connection.poll(timeout):
            raise TimeoutError(f"the moto server did not answer within {timeout} s")
        return self._connection.recv()
