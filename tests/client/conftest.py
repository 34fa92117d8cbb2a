"""The client's test servers: a recording HTTP server in place of API Gateway (it keeps what the client sends and
answers what a test scripts: 202, a status, 400, 403, 5xx), and `serve`, the local mode behind the real API."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


# `serve` run as the console script runs it, through its argparse registration.
SERVE = """
import argparse, sys
from local_mode.serve import register_serve_command
parser = argparse.ArgumentParser(prog="astro-dag-deploy")
register_serve_command(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""
# Creating the stack synthesizes the CDK app (jsii, node): minutes on a busy machine.
STARTUP_SECONDS = 300
# What a CI job's environment must not hold for the local endpoints' credentials and region to be the ones used.
CI_UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION")


@dataclass
class Served:
    api_url: str
    s3_endpoint: str
    out_dir: Path
    log: Path

    @property
    def ci_settings(self) -> dict[str, str]:
        """What a CI job's environment sets to reach the local endpoints, as the banner says."""
        return {"AWS_ENDPOINT_URL": self.s3_endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_REGION": "us-east-1"}

    def ci_environment(self) -> dict[str, str]:
        """This process's environment made a CI job's pointed at the local endpoints, for a subprocess."""
        kept = {name: value for name, value in os.environ.items() if name not in CI_UNSET}
        return {**kept, **self.ci_settings}


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """One `serve` per test process: it takes about half a minute to create the stack."""
    folder = tmp_path_factory.mktemp("serve")
    log = folder / "serve.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--port", "0", "--out", str(folder / "out")],
            stdout=subprocess.DEVNULL, stderr=stderr, env=dict(os.environ),
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Ctrl-C stops." not in log.read_text():
            assert process.poll() is None, f"serve exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"serve not ready after {STARTUP_SECONDS} s:\n{log.read_text()}"
            time.sleep(0.1)
        banner = log.read_text()
        yield Served(
            api_url=re.search(r"API: +(http://127\.0\.0\.1:\d+)", banner)[1],
            s3_endpoint=re.search(r"export AWS_ENDPOINT_URL=(\S+)", banner)[1],
            out_dir=folder / "out",
            log=log,
        )
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    # Ctrl-C stops it cleanly.
    assert code == 0 and "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture
def ci_job(served, monkeypatch):
    """This process's environment made a CI job's pointed at the local endpoints."""
    for name, value in served.ci_settings.items():
        monkeypatch.setenv(name, value)
    for name in CI_UNSET:
        monkeypatch.delenv(name, raising=False)
    return served
