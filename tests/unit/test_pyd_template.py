"""The Go-template subset behind pyd's --format flags."""

from __future__ import annotations

import pytest

from client.pyd.template import TemplateError, go_float, render

CONTAINER = {
    "Id": "abc",
    "Name": "/web",
    "State": {"Running": True, "Pid": 42, "Status": "running"},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v", "a.b": "c"}, "Cmd": None, "Tty": False},
    "Mounts": [{"Source": "/s1"}, {"Source": "/s2"}],
    "Ratio": 0.5,
}


@pytest.mark.parametrize(
    ("tmpl", "out"),
    [
        ("{{.State.Running}}", "true"),
        ("{{.Name}}", "/web"),
        ("{{.State.Pid}}", "42"),
        ("{{.Config.Tty}}", "false"),
        ("{{.Ratio}}", "0.5"),
        ("{{json .Config}}", '{"Env":["A=1","B=2"],"Labels":{"k":"v","a.b":"c"},"Cmd":null,"Tty":false}'),
        ('{{index .Config.Labels "a.b"}}', "c"),
        ("{{index .Config.Env 1}}", "B=2"),
        ("{{.Config.Env}}", "[A=1 B=2]"),
        ("{{.Config.Labels}}", "map[a.b:c k:v]"),
        ("{{.Config.Cmd}}", "<nil>"),
        ("{{.Nope}}", "<no value>"),
        ('{{index .Config.Labels "missing"}}', "<no value>"),
        ("{{.state.running}}", "true"),  # field names also match case-insensitively (events' `id`)
        ("{{.Config.Labels | json}}", '{"k":"v","a.b":"c"}'),
        ('{{join .Config.Env ","}}', "A=1,B=2"),
        ("{{upper .State.Status}} {{len .Mounts}}", "RUNNING 2"),
        ("{{range .Mounts}}{{.Source}};{{end}}", "/s1;/s2;"),
        ("{{range .Config.Cmd}}x{{else}}empty{{end}}", "empty"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ('{{if eq .State.Status "exited"}}gone{{else}}here{{end}}', "here"),
        ("{{with .State}}{{.Pid}}{{end}}", "42"),
        ("a {{- .Id -}} b", "aabcb"),
        ("{{/* note */}}x", "x"),
        ('{{json (index .Config.Labels "k")}}', '"v"'),
        ('{{printf "%s-%d" .Name .State.Pid}}', "/web-42"),
        ("{{range .Mounts}}{{$.Id}}{{end}}", "abcabc"),
        ("{{json .}}", None),
    ],
)
def test_render(tmpl: str, out: str | None) -> None:
    result = render(tmpl, CONTAINER)
    if out is None:
        assert result.startswith('{"Id":"abc","Name":"/web"')
    else:
        assert result == out


def test_json_escapes_like_go() -> None:
    assert render("{{json .}}", {"cmd": "a<b>&c", "u": "é"}) == '{"cmd":"a\\u003cb\\u003e\\u0026c","u":"é"}'


@pytest.mark.parametrize(
    ("tmpl", "message"),
    [
        ("{{.Name", "unclosed action"),
        ("{{nosuch .Name}}", 'function "nosuch" not defined'),
        ("{{if .Name}}x", "unexpected EOF"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{.Name.First}}", "can't evaluate field First in type string"),
        ("{{.Name .Id}}", "can't give argument to non-function"),
    ],
)
def test_errors(tmpl: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("(", r"\(")):
        render(tmpl, CONTAINER)


def test_go_float() -> None:
    assert go_float(0.5) == "0.5"
    assert go_float(100.0) == "100"
    assert go_float(1e21) == "1e+21"
    assert go_float(1.5e-07) == "1.5e-07"
