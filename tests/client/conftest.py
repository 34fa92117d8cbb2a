"""A recording HTTP server in place of API Gateway: it keeps what the client sends and answers what a test scripts
(the answers API Gateway gives: 202, a status, 400, 403, 5xx), so the client's side of the wire can be checked."""

import argparse
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from astro_dag_deploy.client import register_client_commands


def run_command(*argv: object) -> int:
    """Run a client command as the console script does, through its argparse registration."""
    parser = argparse.ArgumentParser(prog="astro-dag-deploy")
    register_client_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(arg) for arg in argv])
    return args.run(args)


@pytest.fixture
def cli():
    return run_command


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingApi:
    url: str
    requests: list[RecordedRequest] = field(default_factory=list)
    # Per method, the answers still to give, in order: (HTTP status, JSON document).
    answers: dict[str, deque] = field(default_factory=lambda: {"GET": deque(), "POST": deque()})

    def answer(self, method: str, *answers: tuple[int, dict]) -> None:
        self.answers[method].extend(answers)


def _handler(api: RecordingApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record_and_answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api.requests.append(RecordedRequest(self.command, self.path, dict(self.headers), body))
            status, document = api.answers[self.command].popleft()
            content = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _record_and_answer

        def log_message(self, format, *args) -> None:
            return

    return Handler


@pytest.fixture
def api(monkeypatch):
    """The recording server, and the environment of a CI job holding temporary credentials."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "session-token-example",
        "AWS_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    recording = RecordingApi(url=f"http://127.0.0.1:{server.server_address[1]}/prod")
    server.RequestHandlerClass = _handler(recording)
    # A short poll: shutdown waits for it.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield recording
    server.shutdown()
    server.server_close()
