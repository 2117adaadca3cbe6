"""A2A messages as swarm submissions: the seed's metadata keys, nesting and clamps."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.types import a2a_pb2
from google.protobuf import json_format, struct_pb2

from swarmd.services.a2a.requests import CONTEXT_LABEL, REPOSITORY_LABEL, RequestError, parse_send
from swarmd.v1 import common_pb2


def send(*parts: a2a_pb2.Part, metadata: dict[str, Any] | None = None, **fields: Any) -> a2a_pb2.SendMessageRequest:
    msg = a2a_pb2.Message(message_id="m-1", role=a2a_pb2.ROLE_USER, parts=list(parts), **fields)
    msg.metadata.update(metadata or {})
    return a2a_pb2.SendMessageRequest(message=msg)


def text(value: str) -> a2a_pb2.Part:
    return a2a_pb2.Part(text=value)


def data(value: Any) -> a2a_pb2.Part:
    return a2a_pb2.Part(data=json_format.ParseDict(value, struct_pb2.Value()))


def test_a_text_task_takes_the_seed_defaults() -> None:
    sub = parse_send(send(text("Add type hints"), text("and tests"), metadata={"repository": "calc"}), "openai/m")
    assert sub.task == "Add type hints\n\nand tests" and sub.plan is None
    assert (sub.config.max_subagents, sub.config.max_steps_per_subagent, sub.config.subagent_timeout_secs) == (10, 50, 600)
    assert sub.config.strategy == common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC
    assert sub.config.model == "openai/m" and sub.config.max_concurrent == 0
    assert sub.repository == "calc" and sub.request_id == "a2a:m-1"
    assert sub.labels == {CONTEXT_LABEL: sub.context_id, REPOSITORY_LABEL: "calc"} and sub.context_id


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"swarm_max_subagents": 500, "max_steps": 0, "timeout": 5}, (100, 1, 30)),
        ({"subagents": "3", "max_steps_per_subagent": 250.0, "timeout_secs": 99999}, (3, 200, 3600)),
        ({"swarm": {"max_subagents": 7}, "routing": {"max_steps": 9}, "forage": {"timeout": 60}}, (7, 9, 60)),
        # The top level wins over the nested objects.
        ({"max_subagents": 2, "swarm": {"max_subagents": 7}}, (2, 50, 600)),
    ],
)
def test_numbers_are_looked_up_and_clamped_as_the_seed_does(settings: dict[str, Any], expected: tuple[int, int, int]) -> None:
    sub = parse_send(send(text("t"), metadata=settings))
    assert (sub.config.max_subagents, sub.config.max_steps_per_subagent, sub.config.subagent_timeout_secs) == expected


def test_the_data_part_wins_over_message_then_request_metadata() -> None:
    request = send(text("t"), data({"strategy": "by_domain"}), metadata={"strategy": "stage", "model": "openai/a"})
    request.metadata.update({"model": "openai/b", "swarm_parallel_enabled": False})
    sub = parse_send(request)
    assert sub.config.strategy == common_pb2.DECOMPOSITION_STRATEGY_BY_DOMAIN
    assert sub.config.model == "openai/a" and sub.config.max_concurrent == 1


def test_a_plan_comes_as_a_data_part_with_or_without_the_plan_key() -> None:
    plan = {"task": "Build it", "subtasks": [{"id": "a", "instruction": "x"}, {"id": "b", "instruction": "y", "dependencies": ["a"]}]}
    for part in (data(plan), data({"plan": plan, "max_subagents": 4})):
        sub = parse_send(send(part))
        assert sub.task == "Build it" and [s.id for s in sub.plan.subtasks] == ["a", "b"]
        assert list(sub.plan.subtasks[1].dependencies) == ["a"]
    assert parse_send(send(data({"plan": plan, "max_subagents": 4}))).config.max_subagents == 4
    assert parse_send(send(text("Different words"), data(plan))).task == "Different words"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (send(), "no task"),
        (send(text("   ")), "no task"),
        (send(a2a_pb2.Part(raw=b"x")), r"parts\[0\]: a raw part is not accepted"),
        (send(data([1, 2])), "must be a JSON object"),
        (send(data({"subtasks": []})), "non-empty 'subtasks'"),
        (send(data({"subtasks": [{"id": "a", "instruction": "x", "colour": "red"}]})), "unknown field"),
        (send(text("t"), metadata={"max_steps": "many"}), "max_steps must be a number"),
        (send(text("t"), metadata={"max_steps": True}), "max_steps must be a number"),
        (send(text("t"), metadata={"parallel_enabled": "perhaps"}), "parallel_enabled must be true or false"),
        (send(text("t"), metadata={"strategy": "sideways"}), "unknown decomposition strategy 'sideways'"),
        (send(text("t"), metadata={"model": 3}), "model must be a string"),
        (send(text("t"), task_id="swarm-1"), "takes no follow-up message"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(request_: a2a_pb2.SendMessageRequest, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_send(request_)


def test_the_context_id_of_the_message_is_kept() -> None:
    sub = parse_send(send(text("t"), context_id="ctx-9"))
    assert sub.context_id == "ctx-9" and sub.labels[CONTEXT_LABEL] == "ctx-9"
