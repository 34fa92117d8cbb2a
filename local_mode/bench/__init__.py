"""`make bench`: the S3 steps against the AWS CLI on a local moto server, whole local executions (wall time,
state transitions) and each zip function's cold-start proxy; results in docs/benchmarks.md."""
