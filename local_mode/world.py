"""A local world: the stack's resources created in an in-process moto from the synthesized template, the
template's own state machine definition, and our handlers run in-process by moto's Lambda.

Nothing here describes the pipeline: buckets, topics, secrets, tables, roles, functions and the state machine
are made from whatever the template declares, with the template's properties and tokens resolved.
"""

import io
import itertools
import json
import logging
import os
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from functions.shared.aws import client as step_client, forget_clients as forget_step_clients

from functions.deploy.warm_bundle import KEPT_FOLDER
from functions.shared.dag_bundles import MAIN_BUNDLE
from local_mode.astro_standin import (
    bundle_versions,
    deploys_held,
    fail_next_deploys,
    last_bundle,
    wait_for_held_deploys,
    write_standin_wrapper,
)
from local_mode.dynamodb_writes import atomic_item_writes
from local_mode.events import Delivery, ExecutionEventBus, Rule, lambda_invoker
from local_mode.execution_end import executions_end_at_once, time_out_execution
from local_mode.lambda_seam import in_process_lambdas, invocation_delays
from local_mode.payload_limits import payload_limits
from local_mode.streams import StreamMapping, StreamPollers, streams_client
from local_mode.template import ARTIFACTS_BUCKET, TokenResolver, UnresolvedReference, stack_template

REGION = "us-east-1"
STACK_NAME = "AstroDagDeploy-local"
ACCOUNT = DEFAULT_ACCOUNT_ID
LOCAL_ASTRO_TOKEN = "local-astro-api-token"
NOTIFICATION_QUEUE = "local-notifications"
# How long a DynamoDB transaction holds its items, about its latency on AWS (local_mode/dynamodb_writes.py).
TRANSACTION_SECONDS = 0.02
LOCAL_NAME_PREFIX = "local-"
_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


class EnvironmentConflict(RuntimeError):
    """Two functions set one variable to different values: one process cannot run both as deployed."""


@dataclass(frozen=True)
class Notification:
    subject: str
    message: str


def merged_environment(environments: dict[str, dict[str, str]]) -> dict[str, str]:
    """The union of every function's environment; a variable set differently by two functions is an error."""
    merged: dict[str, str] = {}
    owners: dict[str, str] = {}
    for function, variables in environments.items():
        for name, value in variables.items():
            if name in merged and merged[name] != value:
                raise EnvironmentConflict(
                    f"{name} is {merged[name]!r} in {owners[name]} but {value!r} in {function}: the local mode runs "
                    "every function in one process with one environment, so the stack must agree on it"
                )
            merged[name] = value
            owners[name] = function
    return merged


@contextmanager
def environment_variables(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) variables for the block, then put back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def logger_to_file(name: str, path: Path) -> Iterator[None]:
    """Send a library's log records to a file for the block instead of stderr (Python's last-resort handler)."""
    logger = logging.getLogger(name)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        handler.close()


def _local_name(logical_id: str, limit: int, lowercase: bool = False) -> str:
    name = LOCAL_NAME_PREFIX + logical_id
    name = re.sub(r"[^a-z0-9-]", "-", name.lower()) if lowercase else name
    return name[:limit]


def _placeholder_zip() -> bytes:
    # The code moto stores is never run: the seam imports the handler from functions/ instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "local mode: the handler runs in-process from functions/\n")
    return buffer.getvalue()


class LocalWorld:
    """The stack, locally. Use as a context manager; one world at a time per process (moto is process-wide).

    `astro_cli`: the astro executable the deploy step runs; default: the project's stand-in, whose state is kept
    under `<out_dir>/astro` (`astro_bundles()` reads it); `standin_upload_seconds` makes each of its deploys take
    that long. Handler code runs in this process, in moto's threads. The template's EventBridge rules receive
    the executions' status-change events (`event_deliveries`); scheduled rules run when `run_schedules()` says;
    the event source mappings of DynamoDB streams are polled (local_mode/streams.py).
    Every state machine of the template is created; `state_machine_arn` is the one the output StateMachineArn
    names (the deploy pipeline).
    """

    _active_lock = threading.Lock()

    def __init__(
        self,
        out_dir: Path | str,
        astro_cli: Path | str | None = None,
        context_overrides: dict[str, Any] | None = None,
        standin_upload_seconds: float = 0.0,
    ):
        self.out_dir = Path(out_dir).resolve()
        # The deploy step runs the CLI from its own work folder: a relative path must not depend on it.
        self.astro_cli = os.path.abspath(astro_cli) if astro_cli and os.sep in str(astro_cli) else astro_cli
        self.context_overrides = context_overrides
        self.standin_upload_seconds = standin_upload_seconds
        self._rules: list[Rule] = []
        self._stream_mappings: list[StreamMapping] = []
        self._streams: StreamPollers | None = None
        self._schedules: list[Rule] = []
        self.state_machine_arns: dict[str, str] = {}
        self._event_bus: ExecutionEventBus | None = None
        self.astro_state_dir: Path | None = None if astro_cli else self.out_dir / "astro"
        self.template: dict = {}
        self.environment: dict[str, str] = {}
        self._function_environments: dict[str, dict[str, str]] = {}
        self.state_machine_arn = ""
        self._resolver: TokenResolver | None = None
        self._exit_stack = ExitStack()
        self._notifications: list[Notification] = []
        self._notifications_lock = threading.Lock()
        self._run_counter = itertools.count(1)
        self._run_counter_lock = threading.Lock()
        self._queue_url = ""

    # ---- lifecycle ----

    def __enter__(self) -> "LocalWorld":
        if not LocalWorld._active_lock.acquire(blocking=False):
            raise RuntimeError("another LocalWorld is active in this process (moto's backends are process-wide)")
        self._exit_stack.callback(LocalWorld._active_lock.release)
        try:
            self._start()
        except BaseException:
            self._exit_stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit_stack.close()

    def _start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.template = stack_template(self.context_overrides)
        self._exit_stack.enter_context(
            environment_variables(
                {
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                    "AWS_SESSION_TOKEN": "local",
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_REGION": REGION,
                    "AWS_PROFILE": None,
                    "AWS_ENDPOINT_URL": None,
                }
            )
        )
        # The steps' boto3 clients are cached per process: make them anew inside (and after) the mock.
        forget_step_clients()
        self._exit_stack.callback(forget_step_clients)
        # moto's interpreter logs every failure a Catch handles as a warning: engine detail, not progress.
        self._exit_stack.enter_context(logger_to_file("moto", self.engine_log))
        self._exit_stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        self._exit_stack.enter_context(in_process_lambdas())
        self._exit_stack.enter_context(payload_limits())
        self._exit_stack.enter_context(atomic_item_writes(transaction_seconds=TRANSACTION_SECONDS))
        self._exit_stack.enter_context(executions_end_at_once())
        self._exit_stack.callback(self._stop_running_executions)

        self._resolver = TokenResolver(self.template, ACCOUNT, REGION, stack_name=STACK_NAME)
        self.client("s3").create_bucket(Bucket=ARTIFACTS_BUCKET)
        self._queue_url = self.client("sqs").create_queue(QueueName=NOTIFICATION_QUEUE)["QueueUrl"]
        self._create_template_resources()

        if self.astro_state_dir is not None:
            # Each world starts with an Astro that has received nothing, like its empty buckets.
            shutil.rmtree(self.astro_state_dir, ignore_errors=True)
            self.astro_state_dir.mkdir(parents=True)
            self.environment["ASTRO_CLI"] = str(
                write_standin_wrapper(self.out_dir / "bin", self.astro_state_dir, self.standin_upload_seconds)
            )
        else:
            self.environment["ASTRO_CLI"] = self.astro_cli
        # The deploy function's /tmp, which Lambda keeps between the invocations of a warm environment: a new
        # world starts with a new one.
        shutil.rmtree(self.deploy_storage, ignore_errors=True)
        self.deploy_storage.mkdir(parents=True)
        self.environment["EPHEMERAL_STORAGE"] = str(self.deploy_storage)
        self._exit_stack.enter_context(environment_variables(dict(self.environment)))
        self._event_bus = ExecutionEventBus(
            sfn=self.client("stepfunctions"), state_machine_arn=self.state_machine_arn, account=ACCOUNT,
            region=REGION, invoke=lambda_invoker(self.client("lambda")), rules=self._rules,
        )
        self._event_bus.start()
        # Closed before the running executions are stopped: a world shutting down needs no recovery.
        self._exit_stack.callback(self._event_bus.stop)
        streams = StreamPollers(streams_client(), lambda_invoker(self.client("lambda")), self._stream_mappings)
        streams.start()
        self._exit_stack.callback(streams.stop)
        self._streams = streams

    def _stop_running_executions(self) -> None:
        sfn = self.client("stepfunctions")
        for state_machine_arn in self.state_machine_arns.values():
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=state_machine_arn, statusFilter="RUNNING"
            ):
                for execution in page["executions"]:
                    sfn.stop_execution(executionArn=execution["executionArn"], cause="local world closed")

    # ---- access ----

    def client(self, service: str):
        """A boto3 client of the embedded AWS (the one the steps use; valid while the world is open)."""
        return step_client(service)

    @property
    def deploy_storage(self) -> Path:
        """The deploy function's ephemeral storage (/tmp), one for the world: as one warm execution environment."""
        return self.out_dir / "deploy-tmp"

    def new_deploy_environment(self) -> None:
        """The next Deploy runs as in a new execution environment: its storage keeps no bundle of an earlier ship."""
        shutil.rmtree(self.deploy_storage / KEPT_FOLDER, ignore_errors=True)

    @property
    def engine_log(self) -> Path:
        """Where the embedded AWS's own log records go."""
        return self.out_dir / "moto.log"

    @property
    def dag_bucket(self) -> str:
        return self.environment["DAG_BUCKET"]

    @property
    def artifacts_bucket(self) -> str:
        return ARTIFACTS_BUCKET

    @property
    def region(self) -> str:
        return REGION

    def next_run_id(self) -> str:
        """A token unique in this world (and readable): UTC time of day and a counter."""
        with self._run_counter_lock:
            number = next(self._run_counter)
        return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{number}"

    def start_execution(self, execution_input: Any, name: str) -> str:
        """Start the state machine with this input exactly (what the API passes); return the execution ARN."""
        response = self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
        )
        return response["executionArn"]

    def dag_keys(self, prefix: str = "") -> list[str]:
        keys = []
        for page in self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.dag_bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)

    def notifications(self) -> list[Notification]:
        """Every message published to the stack's topics so far, in the order received."""
        sqs = self.client("sqs")
        with self._notifications_lock:
            while True:
                messages = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    envelope = json.loads(message["Body"])
                    self._notifications.append(Notification(envelope.get("Subject") or "", envelope["Message"]))
                sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
                )
            return list(self._notifications)

    def event_deliveries(self, execution_arn: str, timeout: float = 30.0) -> list[Delivery]:
        """The EventBridge deliveries made for an ended execution (its status-change event to matching rules)."""
        assert self._event_bus is not None
        return self._event_bus.delivered_for(execution_arn, timeout)

    def time_out_execution(self, execution_arn: str) -> None:
        """End a running execution now as its timeout would (TIMED_OUT; the invocation in flight runs on)."""
        time_out_execution(execution_arn, REGION)

    @contextmanager
    def lose_status_events(self) -> Iterator[list[dict]]:
        """Lose (not deliver) the status-change events of executions ending in the block, as EventBridge's best
        effort delivery may; yields the list of lost events."""
        assert self._event_bus is not None
        self._event_bus.losing = True
        try:
            yield self._event_bus.lost
        finally:
            self._event_bus.losing = False

    @contextmanager
    def lose_stream_records(self) -> Iterator[list[dict]]:
        """Lose (not deliver) the stream records made in the block: the lock's wake-ups among them; yields them."""
        assert self._streams is not None
        self._streams.losing = True
        try:
            yield self._streams.lost
        finally:
            self._streams.losing = False

    def stream_batches_dropped(self) -> list[dict]:
        """The batches of stream records whose function failed on every attempt (Lambda drops them)."""
        assert self._streams is not None
        return list(self._streams.dropped)

    @contextmanager
    def duplicate_stream_records(self) -> Iterator[None]:
        """Deliver each batch of stream records made in the block twice, as Lambda's at-least-once delivery may."""
        assert self._streams is not None
        self._streams.duplicating = True
        try:
            yield
        finally:
            self._streams.duplicating = False

    @contextmanager
    def uneven_invocations(self, max_seconds: float, seed: int) -> Iterator[None]:
        """Make every Lambda invocation in the block wait up to `max_seconds` (at random, varied by `seed`) before
        its handler runs and again after it returns: concurrent executions interleave in unusual orders."""
        with invocation_delays(max_seconds, seed):
            yield

    def run_schedules(self) -> list[Any]:
        """Run every scheduled rule's targets once, as EventBridge does on schedule; return their answers."""
        invoke = lambda_invoker(self.client("lambda"))
        return [
            invoke(target, {"version": "0", "id": self.next_run_id(), "detail-type": "Scheduled Event",
                            "source": "aws.events", "account": ACCOUNT, "region": REGION,
                            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule.name}"], "detail": {}})
            for rule in self._schedules
            for target in rule.target_arns
        ]

    @contextmanager
    def hold_deploys(self) -> Iterator[None]:
        """Keep the stand-in's deploys from landing until the block ends (a deploy already running waits too)."""
        assert self.astro_state_dir is not None, "only the stand-in can be held"
        with deploys_held(self.astro_state_dir):
            yield

    def fail_next_deploys(self, count: int = 1) -> None:
        """Make the stand-in's next `count` deploys that start fail (an error the deploy step does not retry)."""
        assert self.astro_state_dir is not None, "only the stand-in can be made to fail"
        fail_next_deploys(self.astro_state_dir, count)

    def wait_for_held_deploys(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` deploys of the stand-in wait behind `hold_deploys` (they have all started)."""
        assert self.astro_state_dir is not None, "only the stand-in can be held"
        wait_for_held_deploys(self.astro_state_dir, count, timeout)

    def astro_bundles(self, bundle: str = MAIN_BUNDLE) -> dict[str, list[str]]:
        """Per Astro deployment ID, the paths of the last content the stand-in received for one of its Dag bundles
        (empty with --astro-cli)."""
        return {deployment: bundles.get(bundle, []) for deployment, bundles in self.astro_dag_bundles().items()}

    def astro_dag_bundles(self) -> dict[str, dict[str, list[str]]]:
        """Per Astro deployment ID, per Dag bundle, the paths of the last content the stand-in received."""
        if self.astro_state_dir is None:
            return {}
        return {
            folder.name: {bundle: last_bundle(self.astro_state_dir, folder.name, bundle)
                          for bundle in bundle_versions(self.astro_state_dir, folder.name)}
            for folder in sorted(self.astro_state_dir.iterdir())
            if folder.is_dir()
        }

    # ---- resources from the template ----

    def _create_template_resources(self) -> None:
        creators: dict[str, Callable[[str, dict], None]] = {
            "AWS::S3::Bucket": self._create_bucket,
            "AWS::SNS::Topic": self._create_topic,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::SecretsManager::Secret": self._create_secret,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::IAM::Role": self._create_role,
            "AWS::Logs::LogGroup": self._create_log_group,
            "AWS::Lambda::Function": self._create_function,
            "AWS::StepFunctions::StateMachine": self._create_state_machine,
            "AWS::Events::Rule": self._create_rule,
            "AWS::SSM::Parameter": self._create_parameter,
            "AWS::Lambda::EventSourceMapping": self._create_event_source_mapping,
        }
        pending = {
            logical_id: resource
            for logical_id, resource in self.template.get("Resources", {}).items()
            if resource.get("Type") in creators
        }
        # Created as soon as what they refer to exists, as CloudFormation orders them by their references.
        while pending:
            created = []
            for logical_id, resource in pending.items():
                try:
                    creators[resource["Type"]](logical_id, resource.get("Properties", {}))
                except UnresolvedReference as missing:
                    if missing.name.split(".")[0] in pending:
                        continue
                    raise UnresolvedReference(
                        missing.name, f"needed by {logical_id} ({resource['Type']}); the local mode creates only "
                        f"{', '.join(sorted(creators))}"
                    ) from None
                created.append(logical_id)
            if not created:
                raise RuntimeError(f"these resources refer to each other in a cycle: {', '.join(sorted(pending))}")
            for logical_id in created:
                del pending[logical_id]
        self.state_machine_arn = self._pipeline_state_machine()
        self.environment = merged_environment(self._function_environments)

    def _resolve(self, value: Any) -> Any:
        assert self._resolver is not None
        return self._resolver.resolve(value)

    def _create_bucket(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("BucketName")) or _local_name(logical_id, 63, lowercase=True)
        versioning = self._resolve(properties.get("VersioningConfiguration", {})).get("Status")
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
        self._resolver.register(
            logical_id, name, Arn=f"arn:aws:s3:::{name}", DomainName=f"{name}.s3.amazonaws.com",
            RegionalDomainName=f"{name}.s3.{REGION}.amazonaws.com",
        )

    def _create_topic(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("TopicName")) or _local_name(logical_id, 256)
        sns = self.client("sns")
        arn = sns.create_topic(Name=name)["TopicArn"]
        queue_arn = self.client("sqs").get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        self._resolver.register(logical_id, arn, TopicArn=arn, TopicName=name)

    def _create_queue(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("QueueName")) or _local_name(logical_id, 80)
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._resolver.register(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    def _create_secret(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("Name")) or _local_name(logical_id, 256)
        arn = self.client("secretsmanager").create_secret(Name=name, SecretString=LOCAL_ASTRO_TOKEN)["ARN"]
        self._resolver.register(logical_id, arn, Id=arn)

    def _create_table(self, logical_id: str, properties: dict) -> None:
        properties = self._resolve(properties)
        name = properties.get("TableName") or _local_name(logical_id, 255)
        arguments = {
            key: properties[key]
            for key in ("KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
                        "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification")
            if key in properties
        }
        if "StreamSpecification" in arguments:
            # CloudFormation's form names the view type only; the API's also says the stream is on.
            arguments["StreamSpecification"] = {"StreamEnabled": True, **arguments["StreamSpecification"]}
        if arguments.get("BillingMode", "PROVISIONED") == "PROVISIONED" and "ProvisionedThroughput" not in arguments:
            arguments["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        dynamodb = self.client("dynamodb")
        table = dynamodb.create_table(TableName=name, **arguments)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self._resolver.register(logical_id, name, Arn=table["TableArn"], StreamArn=table.get("LatestStreamArn", ""))

    def _create_role(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("RoleName")) or _local_name(logical_id, 64)
        role = self.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY))
        self._resolver.register(logical_id, name, Arn=role["Role"]["Arn"], RoleId=role["Role"]["RoleId"])

    def _create_log_group(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("LogGroupName")) or f"/local/{logical_id}"
        self.client("logs").create_log_group(logGroupName=name)
        self._resolver.register(logical_id, name, Arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*")

    def _create_function(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("FunctionName")) or _local_name(logical_id, 64)
        role = self._resolve(properties["Role"])
        variables = self._resolve(properties.get("Environment", {}).get("Variables", {}))
        arguments: dict[str, Any] = {
            "FunctionName": name,
            "Role": role,
            "Timeout": int(properties.get("Timeout", 3)),
            "MemorySize": int(properties.get("MemorySize", 128)),
            "Environment": {"Variables": variables},
        }
        if properties.get("PackageType") == "Image":
            arguments.update(
                PackageType="Image",
                Code={"ImageUri": self._resolve(properties["Code"]["ImageUri"])},
                ImageConfig=self._resolve(properties.get("ImageConfig", {})),
            )
        else:
            arguments.update(Runtime=properties["Runtime"], Handler=properties["Handler"],
                             Code={"ZipFile": _placeholder_zip()})
        arn = self.client("lambda").create_function(**arguments)["FunctionArn"]
        self._function_environments[name] = variables
        self._resolver.register(logical_id, name, Arn=arn)

    def _create_state_machine(self, logical_id: str, properties: dict) -> None:
        if "DefinitionString" in properties:
            definition = self._resolve(properties["DefinitionString"])
        else:
            definition = json.dumps(self._resolve(properties["Definition"]))
        for key, value in self._resolve(properties.get("DefinitionSubstitutions", {})).items():
            definition = definition.replace("${" + key + "}", str(value))
        name = self._resolve(properties.get("StateMachineName")) or _local_name(logical_id, 80)
        arn = self.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=self._resolve(properties["RoleArn"]),
            type=properties.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        self.state_machine_arns[logical_id] = arn
        self._resolver.register(logical_id, arn, Arn=arn, Name=name)

    def _pipeline_state_machine(self) -> str:
        if not self.state_machine_arns:
            raise RuntimeError("the template declares no AWS::StepFunctions::StateMachine")
        output = self.template.get("Outputs", {}).get("StateMachineArn")
        if output is None:
            if len(self.state_machine_arns) > 1:
                raise RuntimeError("the template declares several state machines and no StateMachineArn output")
            return next(iter(self.state_machine_arns.values()))
        return self._resolve(output["Value"])

    def _create_rule(self, logical_id: str, properties: dict) -> None:
        name = self._resolve(properties.get("Name")) or _local_name(logical_id, 64)
        targets = [self._resolve(target["Arn"]) for target in properties.get("Targets", [])]
        if properties.get("State", "ENABLED") == "ENABLED":
            if "ScheduleExpression" in properties:
                self._schedules.append(Rule(name=name, pattern={}, target_arns=targets))
            else:
                pattern = self._resolve(properties.get("EventPattern", {}))
                self._rules.append(Rule(name=name, pattern=pattern, target_arns=targets))
        self._resolver.register(logical_id, name, Arn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}")

    def _create_event_source_mapping(self, logical_id: str, properties: dict) -> None:
        mapping = StreamMapping.from_properties(self._resolve(properties))
        if ":dynamodb:" not in mapping.stream_arn:
            raise RuntimeError(f"{logical_id}: the local mode polls only DynamoDB streams, not {mapping.stream_arn}")
        self._stream_mappings.append(mapping)
        self._resolver.register(logical_id, logical_id)

    def _create_parameter(self, logical_id: str, properties: dict) -> None:
        properties = self._resolve(properties)
        name = properties.get("Name") or f"/local/{logical_id}"
        self.client("ssm").put_parameter(Name=name, Value=properties["Value"], Type=properties["Type"])
        self._resolver.register(logical_id, name)
