"""The one environment the local mode runs every function with."""

import pytest

from local_mode.world import EnvironmentConflict, merged_environment


def test_the_environment_is_the_union_of_the_functions_environments():
    merged = merged_environment(
        {
            "parse": {"DAG_BUCKET": "dags", "SOURCE_BUCKETS": "artifacts"},
            "notify": {"DAG_BUCKET": "dags", "TOPIC_ARN": "arn:topic"},
        }
    )
    assert merged == {"DAG_BUCKET": "dags", "SOURCE_BUCKETS": "artifacts", "TOPIC_ARN": "arn:topic"}


def test_a_variable_two_functions_set_differently_is_refused_naming_both():
    with pytest.raises(EnvironmentConflict, match=r"LEVEL is 'INFO' in parse but 'DEBUG' in deploy"):
        merged_environment({"parse": {"LEVEL": "INFO"}, "deploy": {"LEVEL": "DEBUG"}})
