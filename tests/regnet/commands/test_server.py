"""The server's verbs refuse bad input in one line, and the schema version is checked on start."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from eval_server.config import ServerConfig
from eval_server.db import SCHEMA_VERSION, Database, Meta
from eval_server.server import prepare
from regnet.cli import main
from regnet.errors import UserError


@pytest.fixture(autouse=True)
def _restore_logging():
    """`main()` points the root logger at the captured stderr; put the old handlers back afterwards."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


def test_serve_and_layout_refuse_bad_input(tmp_path, capsys):
    assert main(["serve", "--db", str(tmp_path / "missing" / "x.sqlite"), "--port", "0"]) == 2
    assert "--db: folder" in capsys.readouterr().err
    assert main(["serve", "--db", str(tmp_path / "x.sqlite"), "--media", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "--media" in capsys.readouterr().err
    assert main(["serve", "--db", str(tmp_path / "x.sqlite"), "--requester-key", "AKONLY", "--port", "0"]) == 2
    assert "together" in capsys.readouterr().err
    assert main(["layout", "add", str(tmp_path / "none.html"), "--db", str(tmp_path / "x.sqlite")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "l.html").write_text("<p>${a}</p>")
    assert main(["layout", "add", str(tmp_path / "l.html"), "--db", str(tmp_path / "x.sqlite"), "--id", "bad id"]) == 2
    assert "--id" in capsys.readouterr().err


@pytest.mark.parametrize("db", ["sqlite://", "sqlite:///:memory:", ":memory:"])
def test_serve_refuses_an_in_memory_database_in_one_line(tmp_path, monkeypatch, capsys, db):
    """An in-memory SQLite database would lose every answer when the server stops (and each pooled
    connection would see a database of its own): refused before anything starts, not a traceback, and
    no file named ':memory:' is made."""
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--db", db, "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--db" in err[0] and "in-memory" in err[0], err
    assert "Traceback" not in "\n".join(err)
    assert list(tmp_path.iterdir()) == []


def test_keys_generated_once_and_schema_version_checked(tmp_path):
    url = str(tmp_path / "s.sqlite")
    cfg, _, gen = prepare(ServerConfig(db_url=url))
    assert gen.requester_key and gen.requester_secret and gen.admin_token
    cfg2, _, gen2 = prepare(ServerConfig(db_url=url))
    assert not gen2.requester_key and cfg2.requester_key == cfg.requester_key
    assert cfg2.requester_secret == cfg.requester_secret and cfg2.secret_key == cfg.secret_key
    db = Database(url)
    with db.write() as s:
        s.execute(update(Meta).where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(UserError, match="newer"):
        Database(url).setup()


def test_serve_without_fork_refuses_processes_in_one_line(tmp_path, monkeypatch, capsys):
    """Where the system cannot fork (Windows), --processes N > 1 is a one-line error before anything
    starts (it was an AttributeError traceback from os.fork)."""
    monkeypatch.delattr("os.fork")
    assert main(["serve", "--db", str(tmp_path / "x.sqlite"), "--port", "0", "--processes", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--processes" in err[0] and "fork" in err[0], err
    assert not (tmp_path / "x.sqlite").exists()
