"""The client's SigV4 signature is the one botocore computes, and covers exactly what it sends."""

import json
from datetime import datetime, timezone

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from astro_dag_deploy.client import CommandError, api_region, signed_headers

CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
FIXED_TIME = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
API_URL = "https://abc123defg.execute-api.eu-central-1.amazonaws.com/prod"
STATUS = {"name": "repo-a-1", "status": "SUCCEEDED", "state": "Deployed", "error": None, "cause": None,
          "startDate": "2025-01-02T03:04:05+00:00", "stopDate": "2025-01-02T03:05:05+00:00", "version": "v1",
          "consoleUrl": "https://console", "states": ["Parse", "Deployed"]}


@pytest.fixture
def fixed_time(monkeypatch):
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: FIXED_TIME.replace(tzinfo=None))


def botocore_authorization(method: str, url: str, body: bytes, headers: dict[str, str], region: str,
                           credentials: ReadOnlyCredentials = CREDENTIALS) -> str:
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", f"{API_URL}/deployments", json.dumps({"repo": "repo-a"}).encode()),
    ("GET", f"{API_URL}/deployments/repo-a-0123abcd-6f1c", None),
])
def test_the_client_signs_as_botocore_does(fixed_time, method, url, body):
    headers = signed_headers(method, url, body, CREDENTIALS, "eu-central-1")

    expected_headers = {"Content-Type": "application/json"} if body is not None else {}
    expected = botocore_authorization(method, url, body or b"", expected_headers, "eu-central-1")
    assert headers["Authorization"] == expected
    assert headers["X-Amz-Date"] == "20250102T030405Z"
    assert headers["X-Amz-Security-Token"] == "session-token-example"
    assert "Credential=AKIDEXAMPLE/20250102/eu-central-1/execute-api/aws4_request" in headers["Authorization"]


def test_what_the_client_sends_is_what_it_signed(api, cli, monkeypatch):
    # The api fixture's environment holds CREDENTIALS.
    api.answer("POST", (202, {"name": "repo-a-0123abcd-6f1c", "executionArn":
                              "arn:aws:states:eu-west-1:123456789012:execution:M:repo-a-0123abcd-6f1c"}))
    api.answer("GET", (200, STATUS))

    assert cli("submit", "--api-url", api.url, "--workspace", "ws", "--deployment", "dep", "--repo", "repo-a",
               "--commit", "0123abcd", "--dag", "etl=s3://ci-artifacts/repo-a/etl.py") == 0
    assert cli("status", "repo-a-1", "--api-url", api.url) == 0

    assert [(request.method, request.path) for request in api.requests] == [
        ("POST", "/prod/deployments"), ("GET", "/prod/deployments/repo-a-1")]
    for request in api.requests:
        # Verified as API Gateway does: the signature recomputed from the request as received, at its own time.
        sent_at = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: sent_at)
        signed_names = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        received = {name: value for name, value in request.headers.items() if name.lower() in signed_names}
        url = f"http://{request.headers['Host']}{request.path}"
        region = "eu-west-1"  # AWS_REGION: the host is not an execute-api one
        assert request.headers["Authorization"] == botocore_authorization(
            request.method, url, request.body, received, region
        )
        assert {"host", "x-amz-date", "x-amz-security-token"} <= set(signed_names)
    assert json.loads(api.requests[0].body)["body"]["dags"] == [
        {"dag_id": "etl", "dag_file": "s3://ci-artifacts/repo-a/etl.py"}]


def test_the_region_is_the_execute_api_hosts_else_the_configured_one(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-west-2")

    assert api_region(API_URL, None) == "eu-central-1"
    private_api = "https://abc123defg-vpce-0a1b2c3d.execute-api.ap-south-1.vpce.amazonaws.com/prod"
    assert api_region(private_api, None) == "ap-south-1"
    assert api_region("https://deploy.example.com/v1", None) == "us-west-2"
    assert api_region("https://deploy.example.com/v1", "eu-north-1") == "eu-north-1"


def test_without_any_region_for_another_host_it_says_to_pass_one(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    with pytest.raises(CommandError, match="pass --region or set AWS_REGION"):
        api_region("http://127.0.0.1:3000", None)
