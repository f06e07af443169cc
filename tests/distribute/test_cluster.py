"""TF_CONFIG parsing, the chief rule, and the workers setting (pure, no TensorFlow)."""

from __future__ import annotations

import json

import pytest

from fisuras.config import Settings
from fisuras.distribute import (
    DistributeError,
    check_workers_setting,
    cluster_from_environ,
    is_chief,
    parse_tf_config,
    tf_config_for,
)
from fisuras.distribute.training import settings_for_environment


def config(cluster: dict, task_type: str, index: int) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def test_worker_zero_is_the_chief_when_the_cluster_has_no_chief_task():
    hosts = ["a:1", "b:1", "c:1"]
    roles = [parse_tf_config(json.dumps(tf_config_for(hosts, i))) for i in range(3)]
    assert [c.is_chief for c in roles] == [True, False, False]
    assert [c.rank for c in roles] == [0, 1, 2]
    assert [c.address for c in roles] == hosts
    assert {c.num_workers for c in roles} == {3}


def test_an_explicit_chief_task_is_the_chief_and_comes_first():
    cluster = {"chief": ["boss:1"], "worker": ["a:1", "b:1"]}
    chief = parse_tf_config(config(cluster, "chief", 0))
    first_worker = parse_tf_config(config(cluster, "worker", 0))
    assert chief.is_chief and chief.rank == 0 and chief.num_workers == 3
    assert not first_worker.is_chief and first_worker.rank == 1
    assert is_chief({"TF_CONFIG": config(cluster, "worker", 0)}) is False
    assert is_chief({"TF_CONFIG": config(cluster, "chief", 0)}) is True


def test_no_tf_config_means_a_single_chief_process():
    assert cluster_from_environ({}) is None and cluster_from_environ({"TF_CONFIG": " "}) is None
    assert is_chief({}) is True


@pytest.mark.parametrize("text, words", [
    ("{not json", ["not valid JSON"]),
    (json.dumps({"task": {"type": "worker", "index": 0}}), ['"cluster"']),
    (config({"worker": ["a:1"], "ps": ["p:1"]}, "worker", 0), ["ps", "chief", "worker"]),
    (config({"worker": ["a:1"]}, "evaluator", 0), ["evaluator", "allowed"]),
    (config({"worker": ["a:1", "b:1"]}, "worker", 2), ["index 2", "2 worker"]),
    (config({"worker": ["a"]}, "worker", 0), ["host:port"]),
    (config({"worker": ["a:1", "a:1"]}, "worker", 0), ["twice"]),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), ['"task"']),
])
def test_bad_tf_config_is_a_clear_error(text, words):
    with pytest.raises(DistributeError) as error:
        parse_tf_config(text)
    for word in words:
        assert word in str(error.value)


def test_tf_config_for_checks_its_hosts():
    with pytest.raises(DistributeError, match="host:port"):
        tf_config_for(["a", "b:1"], 0)
    with pytest.raises(DistributeError, match="index 2"):
        tf_config_for(["a:1", "b:1"], 2)


def test_workers_follow_tf_config_and_must_agree_with_it():
    cluster = parse_tf_config(json.dumps(tf_config_for(["a:1", "b:1"], 1)))
    assert check_workers_setting(1, cluster) == 2  # the default follows TF_CONFIG
    assert check_workers_setting(2, cluster) == 2
    with pytest.raises(DistributeError, match="TF_CONFIG lists 2"):
        check_workers_setting(3, cluster)
    with pytest.raises(DistributeError, match="fisuras launch --workers 2"):
        check_workers_setting(2, None)
    assert check_workers_setting(1, None) == 1


def test_settings_take_the_workers_from_the_environment():
    environ = {"TF_CONFIG": json.dumps(tf_config_for(["a:1", "b:1", "c:1"], 2))}
    assert settings_for_environment(Settings(), environ).workers == 3
    assert settings_for_environment(Settings(), {}).workers == 1
