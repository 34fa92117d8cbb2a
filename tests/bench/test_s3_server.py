"""How the benchmark's server names the S3 requests it counts."""

import pytest

from local_mode.bench.s3_server import S3RequestCounter, s3_operation, signing_service

SIGNED_FOR_S3 = ("AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host;x-amz-date, Signature=abc")


def request(method: str, path: str, query: str = "", **headers: str) -> dict:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "HTTP_AUTHORIZATION": SIGNED_FOR_S3, **headers}


@pytest.mark.parametrize(
    ("environ", "operation"),
    [
        (request("PUT", "/dags/a/b.py", HTTP_X_AMZ_COPY_SOURCE="src/a/b.py"), "CopyObject"),
        (request("PUT", "/dags/a/b.py", "partNumber=1&uploadId=x", HTTP_X_AMZ_COPY_SOURCE="src/b"), "UploadPartCopy"),
        (request("PUT", "/dags/a/b.py"), "PutObject"),
        (request("GET", "/dags/a/b.py"), "GetObject"),
        (request("HEAD", "/dags/a/b.py"), "HeadObject"),
        (request("DELETE", "/dags/a/b.py"), "DeleteObject"),
        (request("GET", "/dags/a/b.py", "tagging"), "GetObjectTagging"),
        (request("POST", "/dags", "delete"), "DeleteObjects"),
        (request("GET", "/dags", "list-type=2&prefix=dags%2F"), "ListObjectsV2"),
        (request("GET", "/dags/", "versions&prefix=x"), "ListObjectVersions"),
        (request("PUT", "/dags", "versioning"), "PUT bucket?versioning"),
        (request("PUT", "/dags"), "PUT bucket"),
    ],
)
def test_requests_are_named_after_their_s3_operation(environ, operation):
    assert s3_operation(environ) == operation


def test_the_service_is_read_from_the_signature_scope():
    assert signing_service(request("GET", "/x")) == "s3"
    assert signing_service({"HTTP_AUTHORIZATION": SIGNED_FOR_S3.replace("/s3/", "/states/")}) == "states"
    assert signing_service({}) is None


def test_the_counter_counts_only_s3_and_starts_afresh_after_each_take():
    answered = []
    counter = S3RequestCounter(lambda environ, start_response: answered.append(environ) or [b""])
    counter(request("GET", "/dags/a.py"), None)
    counter(request("GET", "/dags/a.py"), None)
    counter({"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_AUTHORIZATION": SIGNED_FOR_S3.replace("/s3/", "/sqs/")},
            None)
    assert len(answered) == 3
    assert counter.take() == {"GetObject": 2}
    assert counter.take() == {}
