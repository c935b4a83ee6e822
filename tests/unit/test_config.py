"""Daemon settings: --max-layer-size, as a flag and in the config file."""

import json
from pathlib import Path

import pytest

from daemon.config import DEFAULT_MAX_LAYER_SIZE, load, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1 << 20),
        ("512m", 512 << 20),
        ("20g", 20 << 30),
        ("64GiB", 64 << 30),
        ("1.5k", 1536),
        ("2 GB", 2 << 30),
    ],
)
def test_sizes_are_read_like_dockerd_reads_them(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "10x", "g", "1..5m"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_max_layer_size_from_the_flag_the_file_or_the_default(tmp_path: Path) -> None:
    assert load([])[0].max_layer_size == DEFAULT_MAX_LAYER_SIZE == 64 << 30
    assert load(["--max-layer-size", "8m"])[0].max_layer_size == 8 << 20
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"max-layer-size": "2g"}))
    assert load(["--config-file", str(config)])[0].max_layer_size == 2 << 30


def test_a_max_layer_size_below_one_mib_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        load(["--max-layer-size", "1k"])
    assert "below the minimum of 1 MiB" in capsys.readouterr().err
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"max-layer-size": "lots"}))
    with pytest.raises(SystemExit, match="max-layer-size: invalid size: 'lots'"):
        load(["--config-file", str(config)])
    for number in (5, -1, True):  # a JSON number or bool gets the flag's checks, not a pass
        config.write_text(json.dumps({"max-layer-size": number}))
        with pytest.raises(SystemExit, match="max-layer-size: "):
            load(["--config-file", str(config)])
    config.write_text(json.dumps({"max-layer-size": 8 << 20}))
    assert load(["--config-file", str(config)])[0].max_layer_size == 8 << 20
