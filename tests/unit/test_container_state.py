"""The container state machine: every transition, allowed and refused, and the fields it derives."""

import itertools

import pytest

from daemon.containers.state import (
    ALLOWED,
    UP,
    ZERO_TIME,
    ContainerState,
    Health,
    Status,
    TransitionRefused,
)

T0, T1 = "2026-12-01T00:00:00.000000001Z", "2026-12-01T00:00:05.5Z"


def in_status(status: Status) -> ContainerState:
    return ContainerState(status=status, pid=42 if status in (Status.RUNNING, Status.PAUSED) else 0)


def do(state: ContainerState, wanted: Status) -> None:
    """The one transition method that leads to `wanted` from the state's status."""
    if wanted == Status.RUNNING:
        state.resumed() if state.status == Status.PAUSED else state.running(7, T0)
    elif wanted == Status.PAUSED:
        state.paused()
    elif wanted == Status.EXITED:
        state.exited(3, False, T1)
    elif wanted == Status.RESTARTING:
        state.restarting(3, False, T1)
    elif wanted == Status.REMOVING:
        state.removing()
    elif wanted == Status.DEAD:
        state.dead()
    else:
        raise AssertionError(f"no transition leads to {wanted}")


REACHABLE = [s for s in Status if s != Status.CREATED]  # nothing goes back to created


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(Status, REACHABLE)))
def test_every_transition_is_allowed_or_refused_as_the_table_says(current: Status, wanted: Status) -> None:
    state = in_status(current)
    if wanted in ALLOWED[current]:
        do(state, wanted)
        assert state.status == wanted
    else:
        with pytest.raises(TransitionRefused) as refused:
            do(state, wanted)
        assert state.status == current  # a refused transition changes nothing
        assert (refused.value.current, refused.value.wanted) == (current, wanted)


def test_the_table_is_docker_s_life_cycle() -> None:
    assert ALLOWED[Status.CREATED] == {Status.RUNNING, Status.REMOVING}
    assert ALLOWED[Status.RUNNING] == {Status.PAUSED, Status.EXITED, Status.RESTARTING}
    assert ALLOWED[Status.PAUSED] == {Status.RUNNING, Status.EXITED, Status.RESTARTING}
    assert ALLOWED[Status.RESTARTING] == {Status.RUNNING, Status.EXITED, Status.REMOVING}
    assert ALLOWED[Status.EXITED] == {Status.RUNNING, Status.REMOVING}
    assert ALLOWED[Status.REMOVING] == {Status.DEAD}
    assert ALLOWED[Status.DEAD] == {Status.REMOVING}


def test_running_cannot_replace_resumed_nor_the_reverse() -> None:
    with pytest.raises(TransitionRefused):
        in_status(Status.PAUSED).running(1, T0)  # unpausing keeps the process: that is resumed()
    with pytest.raises(TransitionRefused):
        in_status(Status.EXITED).resumed()


@pytest.mark.parametrize("status", list(Status))
def test_docker_s_flags_are_derived_from_the_status(status: Status) -> None:
    doc = ContainerState(status=status, pid=42).to_json()
    assert doc["Status"] == status.value
    assert doc["Running"] is (status in UP)
    assert doc["Paused"] is (status == Status.PAUSED)
    assert doc["Restarting"] is (status == Status.RESTARTING)
    assert doc["Dead"] is (status == Status.DEAD)
    assert doc["Pid"] == (42 if status in (Status.RUNNING, Status.PAUSED) else 0)
    assert "Health" not in doc  # only a container with a healthcheck has one


def test_a_life_from_start_to_removal_failure() -> None:
    state = ContainerState()
    assert state.to_json() == {
        "Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
        "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME,
    }  # fmt: skip
    state.start_failed(127, "no such command")
    assert (state.status, state.exit_code, state.error) == (Status.CREATED, 127, "no such command")
    state.running(100, T0)
    assert (state.pid, state.exit_code, state.error, state.started_at) == (100, 0, "", T0)
    assert state.finished_at == ZERO_TIME
    state.paused()
    state.resumed()
    assert state.pid == 100
    state.restarting(137, True, T1)  # a restart policy's restart: counted, Docker calls it running
    assert state.to_json()["Running"] is True and state.restart_count == 1
    assert (state.pid, state.exit_code, state.oom_killed, state.finished_at) == (0, 137, True, T1)
    state.running(101, T0)
    assert state.oom_killed is False and state.restart_count == 1
    state.exited(0, False, T1)
    assert state.to_json()["Running"] is False and state.finished_at == T1
    state.removing()
    state.dead()
    assert state.to_json()["Dead"] is True
    state.removing()  # `rm` again after a failed removal


def test_start_failed_is_refused_while_up_and_ends_a_restart() -> None:
    for status in (Status.RUNNING, Status.PAUSED, Status.REMOVING, Status.DEAD):
        with pytest.raises(TransitionRefused):
            in_status(status).start_failed(127, "x")
    state = in_status(Status.RESTARTING)
    state.start_failed(128, "the restart failed")
    assert state.status == Status.EXITED and state.error == "the restart failed"


def test_a_record_s_state_round_trips_and_its_flags_are_not_trusted() -> None:
    state = ContainerState(Status.PAUSED, 9, 0, "", False, T0, ZERO_TIME, 2, Health("healthy", 0, []))
    doc = state.to_json()
    assert ContainerState.from_json(doc, restart_count=2) == state
    lying = {**doc, "Status": "exited", "Running": True, "Paused": True}
    assert ContainerState.from_json(lying).to_json()["Running"] is False
    with pytest.raises(ValueError):
        ContainerState.from_json({**doc, "Status": "sleeping"})


def test_a_new_start_resets_the_health_of_a_container_that_has_one() -> None:
    state = ContainerState(Status.EXITED, health=Health("unhealthy", 3, [{"ExitCode": 1}]))
    state.running(5, T0)
    assert state.health == Health()
    assert state.to_json()["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
