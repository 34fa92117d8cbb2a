"""`astro-dag-deploy serve`: the local mode behind the deployments API on 127.0.0.1, with the embedded AWS reachable
as an S3-compatible endpoint, so that `push`, `submit` and `status` run against it unchanged.

As API Gateway does, POST /deployments validates the body against the request's JSON schema (draft-04) and starts
an execution named by the API's rule with the body as its input; GET /deployments/{executionName} and
GET /targets/{workspace}/{deployment} call the real status function with an API Gateway proxy event. Requests must carry a SigV4 Authorization header, which is NOT
verified: any credentials work.
"""

import argparse
import json
import logging
import shutil
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from local_mode.executions import ProgressPrinter
    from local_mode.world import LocalWorld

HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_OUT = Path(".local")
EXIT_OK, EXIT_USAGE = 0, 2
DEPLOYMENTS_PATH = "/deployments"
STATUS_RESOURCE = "/deployments/{executionName}"
TARGETS_PATH = "/targets"
TARGETS_RESOURCE = "/targets/{workspace}/{deployment}"
SIGV4_SCHEME = "AWS4-HMAC-SHA256 "
STATUS_FUNCTION_TIMEOUT_SECONDS = 30
WATCHER_JOIN_SECONDS = 10


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class LocalDeploymentsApi:
    """What API Gateway and the status function do for the API's two routes, on a local world."""

    def __init__(self, world: "LocalWorld", base_url: str, progress: "ProgressPrinter"):
        from jsonschema import Draft4Validator

        from local_mode.lambda_seam import load_handler
        from functions.shared.models import api_json_schema

        self.world = world
        self.base_url = base_url
        self.progress = progress
        self._validator = Draft4Validator(api_json_schema())
        self._status_handler = load_handler("functions.status.app.handler")
        # One invocation at a time, as in one Lambda container: the resolver and the logger keep per-call state.
        self._status_lock = threading.Lock()
        self._watchers: list[tuple[str, threading.Thread]] = []

    def start_deployment(self, body: bytes) -> tuple[int, dict]:
        from botocore.exceptions import ClientError

        from functions.shared.execution_names import execution_name

        try:
            document = json.loads(body)
        except ValueError:
            return 400, {"message": "Invalid request body", "validationErrors": "[the body is not JSON]"}
        errors = sorted(self._validator.iter_errors(document), key=lambda error: list(map(str, error.absolute_path)))
        if errors:
            described = ", ".join(
                f"{'.'.join(map(str, error.absolute_path)) or 'request'}: {error.message}" for error in errors
            )
            return 400, {"message": "Invalid request body", "validationErrors": f"[{described}]"}
        name = execution_name(document["repo"], document.get("commit"), uuid.uuid4().hex)
        try:
            arn = self.world.start_execution(document, name)
        except ClientError as refused:
            # As the API's integration responses: Step Functions' client errors are 400, its faults 502.
            error = refused.response["Error"]
            if refused.response["ResponseMetadata"]["HTTPStatusCode"] < 500:
                return 400, {"error": error.get("Code", ""), "message": error.get("Message", "")}
            return 502, {"error": "StepFunctionsUnavailable", "message": error.get("Message", "")}
        self.progress.line(f"{name}  started by POST {DEPLOYMENTS_PATH}")
        self._watch(arn)
        return 202, {"name": name, "executionArn": arn, "statusUrl": f"{self.base_url}{DEPLOYMENTS_PATH}/{name}"}

    def deployment_status(self, path: str, headers: dict[str, str], source_ip: str) -> tuple[int, str, bytes]:
        return self._invoke_status(STATUS_RESOURCE, path, {"executionName": path.rsplit("/", 1)[-1]}, headers,
                                   source_ip)

    def targets(self, path: str, headers: dict[str, str], source_ip: str) -> tuple[int, str, bytes]:
        _, _, workspace, deployment = path.split("/")
        return self._invoke_status(TARGETS_RESOURCE, path, {"workspace": workspace, "deployment": deployment},
                                   headers, source_ip)

    def _invoke_status(
        self, resource: str, path: str, parameters: dict[str, str], headers: dict[str, str], source_ip: str
    ) -> tuple[int, str, bytes]:
        from local_mode.lambda_seam import LocalLambdaContext
        from local_mode.world import ACCOUNT, REGION

        request_id = str(uuid.uuid4())
        event = {
            "resource": resource,
            "path": path,
            "httpMethod": "GET",
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": parameters,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource, "httpMethod": "GET", "path": path, "stage": "local",
                "requestId": request_id, "accountId": ACCOUNT, "apiId": "local", "identity": {"sourceIp": source_ip},
            },
            "body": None,
            "isBase64Encoded": False,
        }
        context = LocalLambdaContext(
            function_name="status", memory_limit_in_mb=256, timeout_seconds=STATUS_FUNCTION_TIMEOUT_SECONDS,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:status", aws_request_id=request_id,
        )
        with self._status_lock:
            response = self._status_handler(event, context)
        content_type = (response.get("multiValueHeaders") or {}).get("Content-Type", ["application/json"])[0]
        return response["statusCode"], content_type, (response.get("body") or "").encode()

    def _watch(self, arn: str) -> None:
        from local_mode.executions import watch_execution
        from functions.shared.notification import readable_cause

        def watch() -> None:
            # The printer tells each state and the outcome; the cause and notifications are told here.
            result = watch_execution(self.world, arn, self.progress)
            if result.status != "SUCCEEDED":
                self.progress.line(f"{result.name}  cause: {readable_cause(result.cause)}")
            for note in result.notifications:
                self.progress.line(f"{result.name}  notification sent: {note.subject}")

        watcher = threading.Thread(target=watch, name=f"watch {arn.rsplit(':', 1)[-1]}", daemon=True)
        watcher.start()
        self._watchers.append((arn, watcher))

    def close(self) -> None:
        """Stop the executions still running and wait for their watchers, while the embedded AWS is still up."""
        from botocore.exceptions import ClientError

        sfn = self.world.client("stepfunctions")
        for arn, watcher in self._watchers:
            if watcher.is_alive():
                try:
                    sfn.stop_execution(executionArn=arn, cause="astro-dag-deploy serve stopped")
                except ClientError:
                    continue  # it ended meanwhile
                self.progress.line(f"{arn.rsplit(':', 1)[-1]}  stopped: serve is stopping")
        for _, watcher in self._watchers:
            watcher.join(WATCHER_JOIN_SECONDS)


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    api: LocalDeploymentsApi | None = None


class _ApiRequestHandler(BaseHTTPRequestHandler):
    server: _ApiServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._refused(urlsplit(self.path).path.rstrip("/") == DEPLOYMENTS_PATH):
            return
        if self.headers.get_content_type() != "application/json":
            self._send_json(415, {"message": "Unsupported Media Type"})
            return
        self._send_json(*self.server.api.start_deployment(body))

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        is_status = path.startswith(f"{DEPLOYMENTS_PATH}/") and path.count("/") == 2
        is_targets = path.startswith(f"{TARGETS_PATH}/") and path.count("/") == 3 and "" not in path.split("/")[1:]
        if self._refused(is_status or is_targets):
            return
        route = self.server.api.deployment_status if is_status else self.server.api.targets
        status, content_type, body = route(path, dict(self.headers), self.client_address[0])
        self._send(status, content_type, body)

    def _refused(self, known_route: bool) -> bool:
        """Answer as API Gateway does to unknown routes and unsigned requests (the signature is not checked)."""
        if not known_route:
            self._send_json(404, {"message": f"no route for {self.command} {self.path}"})
        elif not (self.headers.get("Authorization") or "").startswith(SIGV4_SCHEME):
            self._send_json(403, {"message": "Missing Authentication Token"})
        else:
            return False
        return True

    def _send_json(self, status: int, document: dict) -> None:
        self._send(status, "application/json", json.dumps(document).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The progress lines say what the requests do; polling would drown them.
        return


def _usage_error(message: str) -> int:
    print(f"astro-dag-deploy serve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_serve(args: argparse.Namespace) -> int:
    # Imported here: the local mode loads moto and jsii, which other commands do not need.
    from local_mode.executions import ProgressPrinter
    from local_mode.output import stdout_to_file
    from local_mode.world import LocalWorld

    started = time.monotonic()
    astro_cli = None
    if args.astro_cli:
        astro_cli = shutil.which(args.astro_cli)
        if astro_cli is None:
            return _usage_error(f"--astro-cli {args.astro_cli}: not an executable file")
    try:
        # Bound before the stack is made, so that a busy port is reported at once.
        http_server = _ApiServer((HOST, args.port), _ApiRequestHandler)
    except OSError as error:
        return _usage_error(f"cannot listen on {HOST}:{args.port}: {error.strerror or error}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    api_url = f"http://{HOST}:{http_server.server_address[1]}"
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "handlers.log"
    progress = ProgressPrinter(sys.stderr)
    progress.line(f"Creating the stack in an embedded AWS (handler logs: {log_path})")
    # The embedded S3 endpoint logs every request otherwise.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        with stdout_to_file(log_path), LocalWorld(out_dir, astro_cli=astro_cli) as world:
            _serve(world, http_server, api_url, progress, log_path, started)
    except KeyboardInterrupt:
        progress.line("Stopped while the stack was being created")
    finally:
        http_server.server_close()
    return EXIT_OK


def _serve(
    world: "LocalWorld", http_server: _ApiServer, api_url: str, progress: "ProgressPrinter", log_path: Path,
    started: float,
) -> None:
    """Serve until Ctrl-C (or SIGTERM), then stop what runs while the embedded AWS is still up."""
    from moto.server import ThreadedMotoServer

    from local_mode.world import REGION, environment_variables

    # Port 0: the system picks a free one; the banner prints it.
    moto_server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    moto_server.start()
    try:
        with environment_variables({"STATE_MACHINE_ARN": world.state_machine_arn}):
            api = LocalDeploymentsApi(world, api_url, progress)
            http_server.api = api
            endpoint = "http://{}:{}".format(*moto_server.get_host_and_port())
            _print_banner(progress, api_url, endpoint, world.artifacts_bucket, REGION, log_path,
                          time.monotonic() - started)
            try:
                http_server.serve_forever()
            except KeyboardInterrupt:
                progress.line("Stopping")
            finally:
                api.close()
    finally:
        moto_server.stop()


def _print_banner(progress: "ProgressPrinter", api_url: str, endpoint: str, bucket: str, region: str, log_path: Path,
                  seconds: float) -> None:
    progress.line(
        f"Local deployments API ready in {seconds:.1f} s (the local mode: no AWS account is involved)\n"
        f"  API:         {api_url}  (POST {DEPLOYMENTS_PATH}, GET {STATUS_RESOURCE})\n"
        "               SigV4-signed requests are accepted WITHOUT checking their signatures: any credentials do\n"
        f"  S3 endpoint: {endpoint}  (the embedded AWS; s3://{bucket} is an allow-listed source bucket)\n"
        "  In another shell:\n"
        f"    export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "
        f"AWS_REGION={region}\n"
        f"    astro-dag-deploy push examples/marketing_etl --artifacts s3://{bucket}/ci --api-url {api_url} \\\n"
        "      --workspace analytics --deployment production --repo marketing_etl --wait\n"
        f"  Handler logs: {log_path}. Ctrl-C stops."
    )


def register_serve_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `serve` to the command's sub-parsers."""
    serve = subparsers.add_parser(
        "serve",
        help="serve the deployments API on 127.0.0.1 with the local mode behind it (no AWS account needed)",
        description="Create the stack in an embedded AWS as `local` does and serve the deployments API on "
        f"{HOST}, with the embedded AWS as an S3-compatible endpoint (its URL is printed: export it as "
        "AWS_ENDPOINT_URL), so that push, submit and status run against it unchanged. Signatures are not checked. "
        "Ctrl-C stops it.",
    )
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the API's port (default: {DEFAULT_PORT})")
    serve.add_argument("--astro-cli", metavar="PATH",
                       help="astro executable the deploy step runs (default: the project's local stand-in)")
    serve.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                       help="folder for handler logs and the stand-in's deployments (default: .local)")
    serve.set_defaults(run=run_serve)
