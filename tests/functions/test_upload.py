"""Upload: the planned files land under the repo prefix, copied server-side, exactly as Parse validated them."""

from dataclasses import replace

import pytest
from testkit import DAG_BUCKET, SOURCE_BUCKET, emitted_metrics

from functions.shared.aws import client
from functions.shared.errors import UploadFailed
from functions.shared.plan_store import Plan, PlannedFile, save_plan
from functions.upload import app
from functions.upload.copying import upload_plan


def planned(s3, key: str, body: bytes, path: str, kind: str = "dependency") -> PlannedFile:
    etag = s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=body)["ETag"]
    return PlannedFile(source_bucket=SOURCE_BUCKET, source_key=key, etag=etag, size=len(body), path=path, kind=kind)


def make_plan(files: list[PlannedFile], execution: str = "exec-1") -> Plan:
    return Plan(workspace="ws", deployment="dep", repo="repo-a", commit="abc123", execution=execution,
                prefix="dags/ws/dep/repo-a/", files=files)


def test_copies_every_file_with_its_provenance(buckets):
    files = [
        planned(buckets, "build/etl.py", b"print('etl')", "pipelines/etl.py", "dag"),
        planned(buckets, "build/q.sql", b"select 1", "sql/q.sql"),
    ]

    result = upload_plan(DAG_BUCKET, make_plan(files))

    assert result.to_json() == {"prefix": "dags/ws/dep/repo-a/", "copied": 2, "bytes": 20}
    copied = buckets.get_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/pipelines/etl.py")
    assert copied["Body"].read() == b"print('etl')"
    assert copied["Metadata"] == {"source": "s3%3A//test-ci-artifacts/build/etl.py", "execution": "exec-1",
                                  "commit": "abc123"}
    assert buckets.get_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/sql/q.sql")["Body"].read() == b"select 1"


def test_copies_many_files_concurrently(buckets):
    files = [planned(buckets, f"build/f{number}.py", b"x" * number, f"f{number}.py") for number in range(150)]
    assert upload_plan(DAG_BUCKET, make_plan(files)).copied == 150
    assert buckets.list_objects_v2(Bucket=DAG_BUCKET, Prefix="dags/ws/dep/repo-a/")["KeyCount"] == 150


def test_a_source_changed_since_parse_is_not_copied(buckets):
    entry = planned(buckets, "build/etl.py", b"validated", "etl.py", "dag")
    buckets.put_object(Bucket=SOURCE_BUCKET, Key="build/etl.py", Body=b"swapped after validation")

    with pytest.raises(UploadFailed, match="1 of 1 files could not be copied: etl.py: the source changed"):
        upload_plan(DAG_BUCKET, make_plan([entry]))


def answering_copies_as_s3_does_for_sse_kms_sources(s3) -> None:
    """S3 gives an SSE-KMS object an ETag that is no MD5 of its bytes, and its copy into the SSE-S3 DAG bucket the
    MD5: the ETags differ although the bytes are the same. moto gives both the MD5; this makes the copy's differ."""

    def other_etag(parsed, **_):
        parsed["CopyObjectResult"]["ETag"] = '"0123456789abcdef0123456789abcdef"'

    s3.meta.events.register("after-call.s3.CopyObject", other_etag)


@pytest.mark.parametrize(
    "encryption, copied", [("aws:kms", True), ("aws:kms:dsse", True), ("AES256", False), (None, False)]
)
def test_only_an_sse_kms_sources_etag_may_differ_from_its_copys(buckets, encryption, copied):
    entry = planned(buckets, "build/etl.py", b"validated", "etl.py", "dag")
    # The step's cached client is the fixture's.
    answering_copies_as_s3_does_for_sse_kms_sources(buckets)
    entry = replace(entry, server_side_encryption=encryption)

    if copied:
        assert upload_plan(DAG_BUCKET, make_plan([entry])).copied == 1
    else:
        with pytest.raises(UploadFailed, match="etl.py: the source changed"):
            upload_plan(DAG_BUCKET, make_plan([entry]))


def test_every_failed_file_is_named(buckets):
    good = planned(buckets, "build/good.py", b"ok", "good.py")
    gone = [planned(buckets, f"build/gone{number}.py", b"x", f"gone{number}.py") for number in range(12)]
    for number in range(12):
        buckets.delete_object(Bucket=SOURCE_BUCKET, Key=f"build/gone{number}.py")

    with pytest.raises(UploadFailed) as raised:
        upload_plan(DAG_BUCKET, make_plan([good, *gone]))

    message = str(raised.value)
    assert message.startswith("12 of 13 files could not be copied: gone0.py: NoSuchKey")
    assert message.endswith("(and 2 more)")


def test_handler_reads_the_plan_of_its_own_execution(buckets, monkeypatch, lambda_context, capsys):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    save_plan(DAG_BUCKET, make_plan([planned(buckets, "build/etl.py", b"code", "etl.py", "dag")], "exec-7"))
    state = {"workspace": "ws", "deployment": "dep", "repo": "repo-a", "execution": "exec-7",
             "clear": {"deleted": 0}}

    assert app.handler(state, lambda_context) == {"prefix": "dags/ws/dep/repo-a/", "copied": 1, "bytes": 4}
    metrics = emitted_metrics(capsys.readouterr().out, repo="repo-a")
    assert metrics["upload.success"] == 1 and metrics["upload.files"] == 1 and metrics["upload.bytes"] == 4


def test_upload_only_copies_it_reads_nothing_back_and_writes_no_archive(buckets):
    files = [planned(buckets, "build/etl.py", b"print('etl')", "etl.py", "dag"),
             planned(buckets, "build/q.sql", b"select 1", "sql/q.sql")]
    calls: list[str] = []
    client("s3").meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))

    upload_plan(DAG_BUCKET, make_plan(files))

    # Deploy archives the repo as it ships it, from the bytes it downloads anyway.
    assert calls == ["CopyObject", "CopyObject"]
    assert "Contents" not in buckets.list_objects_v2(Bucket=DAG_BUCKET, Prefix="archives/")
