"""Dockerfile-style `changes` for docker import / commit."""

import pytest

from daemon.errors import InvalidParameter
from daemon.images.changes import apply_changes, empty_container_config


def apply(*changes: str) -> dict:
    return apply_changes(empty_container_config(), list(changes))


def test_no_changes_is_the_empty_go_config() -> None:
    cfg = apply()
    assert cfg == empty_container_config()
    assert cfg["Cmd"] is None and cfg["Env"] is None


def test_cmd_and_entrypoint_json_and_shell_forms() -> None:
    assert apply('CMD ["sh", "-c", "echo hi"]')["Cmd"] == ["sh", "-c", "echo hi"]
    assert apply("CMD echo $HOME hi")["Cmd"] == ["/bin/sh", "-c", "echo $HOME hi"]
    assert apply("cmd [not json")["Cmd"] == ["/bin/sh", "-c", "[not json"]
    cfg = apply('ENTRYPOINT ["/init"]')
    assert cfg["Entrypoint"] == ["/init"] and cfg["Cmd"] is None
    cfg = apply('CMD ["x"]', "ENTRYPOINT /init --fast")
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/init --fast"] and cfg["Cmd"] == ["x"]


def test_env_forms_quotes_and_expansion() -> None:
    cfg = apply(
        "ENV PATH=/usr/bin:/bin",
        "ENV A=1 B=\"two words\" C='$A literal' D=${A}x E=$PATH:/opt",
        "ENV LEGACY value with  spaces",
        "ENV A=2",
    )
    # one ENV line expands with the environment from before it (D sees no A), and a key that is set
    # again keeps its place
    assert cfg["Env"] == [
        "PATH=/usr/bin:/bin",
        "A=2",
        "B=two words",
        "C=$A literal",
        "D=x",
        "E=/usr/bin:/bin:/opt",
        "LEGACY=value with  spaces",
    ]
    assert apply("ENV X=${UNSET:-dflt} Y=a\\ b")["Env"] == ["X=dflt", "Y=a b"]


def test_other_instructions() -> None:
    cfg = apply(
        "WORKDIR /app",
        "WORKDIR sub/../src",
        "USER 1000:1000",
        "EXPOSE 80 53/udp 8000-8001",
        'LABEL org.example.name="my app" version=1',
        'VOLUME ["/data", "/logs"]',
        "VOLUME /cache",
        "STOPSIGNAL SIGQUIT",
        "ONBUILD RUN make",
    )
    assert cfg["WorkingDir"] == "/app/src"
    assert cfg["User"] == "1000:1000"
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert cfg["Labels"] == {"org.example.name": "my app", "version": "1"}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}, "/cache": {}}
    assert cfg["StopSignal"] == "SIGQUIT"
    assert cfg["OnBuild"] == ["RUN make"]


def test_changes_do_not_modify_their_input() -> None:
    base = empty_container_config()
    apply_changes(base, ["ENV A=1"])
    assert base["Env"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("RUN make", "run is not a valid change command"),
        ("FROBNICATE x", "unknown instruction: FROBNICATE"),
        ("CMD", "CMD requires at least one argument"),
        ("EXPOSE 99999", "invalid containerPort: 99999"),
        ("EXPOSE 80/icmp", "invalid containerPort"),
        ("STOPSIGNAL SIGNOPE", "Invalid signal: SIGNOPE"),
        ("ENV =x", "ENV names can not be blank"),
        ("ENV ONLYKEY", "ENV must have two arguments"),
        ('ENV A="unterminated', "unexpected end of statement"),
        ("ONBUILD FROM x", "isn't allowed as an ONBUILD trigger"),
    ],
)
def test_invalid_changes(change: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        apply(change)
