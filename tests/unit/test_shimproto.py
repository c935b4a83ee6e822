"""The daemon <-> shim messages: every one survives a round trip, malformed ones are refused by name."""

import json

import pytest

from daemon.runtime import shimproto
from daemon.runtime.shimproto import (
    Attach,
    Attached,
    Created,
    Exec,
    ExecExited,
    ExecStarted,
    ExecWait,
    Exited,
    Failed,
    MalformedMessage,
    Resize,
    Resized,
    ShimRefused,
    ShimState,
    Start,
    Started,
    Wait,
)
from daemon.runtime.spec import ProcessSpec, Rlimit

PROCESS = ProcessSpec(
    args=["/bin/sh", "-c", "echo hi"],
    env=["PATH=/bin"],
    user="1000:1000",
    tty=True,
    caps=["CAP_CHOWN"],
    rlimits=[Rlimit("nofile", 1024, 2048)],
)

REQUESTS = [
    Start(),
    Wait(),
    Attach(stdin=True, stdout=False, stderr=True),
    Exec("e1", PROCESS, (24, 80), detached=True),
    Exec("e2", PROCESS),
    ExecWait("e1"),
    Resize("e1", 50, 132),
    Resize(None, 25, 80),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_every_request_survives_a_round_trip(request_: shimproto.Request) -> None:
    line = shimproto.encode(request_)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert shimproto.decode_request(line) == request_


ANSWERS = [
    Started(4242),
    Attached(),
    ExecStarted(17),
    Exited(137, oom_killed=True, finished_at="2026-12-01T10:00:00.000000001Z"),
    ExecExited(126),
    Resized(False),
    Created(4242, 4241),
    ShimState(4242, 4241, "running"),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: type(a).__name__)
def test_every_answer_survives_a_round_trip(answer: shimproto.Message) -> None:
    assert shimproto.decode_answer(shimproto.encode(answer), type(answer)) == answer


def test_the_wire_format_is_the_one_earlier_shims_speak() -> None:
    # a shim started by the previous daemon reads these lines, and a new one reads them from an old daemon
    assert json.loads(shimproto.encode(Resize(None, 25, 80))) == {
        "op": "resize",
        "exec": None,
        "rows": 25,
        "cols": 80,
    }
    assert json.loads(shimproto.encode(ExecWait("e1"))) == {"op": "exec_wait", "id": "e1"}
    exec_line = json.loads(shimproto.encode(Exec("e1", PROCESS, (24, 80))))
    assert exec_line["op"] == "exec" and exec_line["tty_size"] == [24, 80]
    assert exec_line["process"]["rlimits"] == [{"type": "nofile", "soft": 1024, "hard": 2048}]


def test_fields_a_side_does_not_know_are_ignored() -> None:
    # the previous shim answered {"ok": true, "pid": ...}: a new daemon still reads the pid
    assert shimproto.decode_answer(b'{"ok": true, "pid": 7}\n', Started) == Started(7)
    assert shimproto.decode_request(b'{"op": "wait", "from": "the future"}') == Wait()


def test_an_error_answer_raises_with_the_shims_words() -> None:
    line = shimproto.encode(Failed("no such exec: e9"))
    with pytest.raises(ShimRefused, match=r"^no such exec: e9$"):
        shimproto.decode_answer(line, ExecExited)


def test_nested_process_spec_is_rebuilt_as_dataclasses() -> None:
    decoded = shimproto.decode_request(shimproto.encode(Exec("e1", PROCESS)))
    assert isinstance(decoded, Exec)
    assert decoded.process.rlimits == [Rlimit("nofile", 1024, 2048)]
    assert decoded.tty_size is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"rows": 1}', "unknown op None"),
        (b'{"op": "state"}', "unknown op 'state'"),  # gone: nobody sent it
        (b'{"op": "resize", "exec": null, "rows": 25}', "Resize: cols is missing"),
        (b'{"op": "resize", "exec": null, "rows": "25", "cols": 80}', "Resize.rows: '25' is not int"),
        (b'{"op": "resize", "exec": 3, "rows": 25, "cols": 80}', "Resize.exec: 3 is not"),
        (b'{"op": "resize", "exec": null, "rows": true, "cols": 80}', "Resize.rows: True is not int"),
        (b'{"op": "attach", "stdin": "yes"}', "Attach.stdin: 'yes' is not bool"),
        (b'{"op": "exec_wait"}', "ExecWait: id is missing"),
        (b'{"op": "exec", "id": "e", "process": []}', "Exec.process: expected an object"),
        (b'{"op": "exec", "id": "e", "process": {"env": []}}', "Exec.process: args is missing"),
        (
            b'{"op": "exec", "id": "e", "process": {"args": ["sh", 1], "env": []}}',
            r"Exec.process.args\[1\]: 1 is not str",
        ),
        (
            b'{"op": "exec", "id": "e", "process": {"args": [], "env": []}, "tty_size": [24]}',
            "Exec.tty_size: \\[24\\] is not",
        ),
    ],
)
def test_malformed_requests_are_refused_naming_what_is_wrong(line: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        shimproto.decode_request(line)


def test_malformed_answers_are_refused() -> None:
    with pytest.raises(MalformedMessage, match="Exited: exit_code is missing"):
        shimproto.decode_answer(b"{}", Exited)
    with pytest.raises(MalformedMessage, match=r"Started\.pid: None is not int"):
        shimproto.decode_answer(b'{"pid": null}', Started)


def test_exit_code_in_reads_an_exec_s_last_frame_and_nothing_else() -> None:
    from daemon.runtime.interface import exit_code_in

    assert exit_code_in(shimproto.encode(shimproto.ExecExited(3))) == 3
    assert exit_code_in(b'{"exit_code": 0}\n') == 0  # as a shim of the previous version wrote it
    for other in (b"{}", b'{"error": "gone"}', b"not json", b'{"exit_code": "3"}'):
        assert exit_code_in(other) is None
