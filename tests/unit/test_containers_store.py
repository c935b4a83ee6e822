"""ContainerStore.load at start-up: what is not a container is logged and dealt with, never fatal."""

import json
import logging
from pathlib import Path

import pytest

from daemon.containers.store import RECORD, Container, ContainerStore
from daemon.files.trash import Trash
from tests.deep_trees import make_chain


def record(cid: str, name: str = "x", status: str = "exited") -> dict[str, object]:
    return {"Id": cid, "Name": "/" + name, "State": {"Status": status}, "Config": {}, "HostConfig": {}}


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "containers", tmp_path / "trash"


def test_load_keeps_containers_and_clears_what_is_not_one(
    roots: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    croot, troot = roots
    good, bare, broken, alien = "a" * 64, "b" * 64, "c" * 64, "d" * 64
    for cid in (good, bare, broken, alien):
        (croot / cid / "rw" / "upper").mkdir(parents=True)
    (croot / good / RECORD).write_text(json.dumps(record(good)))
    make_chain(croot / bare / "rw" / "upper", 1500)  # no record: a create a crash interrupted
    (croot / broken / RECORD).write_text(json.dumps({"Id": broken, "State": {"Status": "no such status"}}))
    (croot / alien / RECORD).write_text(json.dumps(record(good, "other")))  # another container's record
    trash = Trash(troot)
    store = ContainerStore(croot, trash)
    loaded = store.load()
    assert [c.id for c in loaded] == [good]
    assert sorted(p.name for p in croot.iterdir()) == sorted([good, broken, alien])  # kept, not guessed at
    assert trash.purge()
    assert list(troot.iterdir()) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2 and all("unusable record" in e for e in errors)


def test_a_removed_container_is_never_written_back(roots: tuple[Path, Path]) -> None:
    croot, troot = roots
    cid = "e" * 64
    store = ContainerStore(croot, Trash(troot))
    c = Container(record(cid), croot / cid)
    store.save(c)
    store.add(c)
    assert store.discard_dir(c) is not None
    store.save_state(c)  # a late exit, say
    store.save(c)  # a late rename
    assert not (croot / cid).exists()
