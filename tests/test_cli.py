"""The ``kmedqa`` command: every listed module registers; one that does not import stops it."""

from __future__ import annotations

import sys

import pytest

from kmedqa import cli


def test_every_command_module_registers():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"prepare", "split", "demo-data", "score", "compare", "judge", "judge-table"} <= set(
        sub.choices
    )


def test_a_module_that_does_not_import_fails_loudly(monkeypatch, capsys):
    monkeypatch.setattr(cli, "MODULES", (*cli.MODULES, "kmedqa.no_such_commands"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "kmedqa.no_such_commands does not import" in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback


def test_a_module_whose_dependency_is_missing_fails_loudly(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "kmedqa_test_broken", None)  # import raises ImportError
    monkeypatch.setattr(cli, "MODULES", ("kmedqa_test_broken",))
    with pytest.raises(SystemExit):
        cli.main(["compare", "--help"])
    assert "kmedqa_test_broken does not import" in capsys.readouterr().err


def test_a_module_without_register_fails_loudly(monkeypatch, capsys):
    monkeypatch.setattr(cli, "MODULES", ("kmedqa.errors",))
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert "kmedqa.errors defines no register" in capsys.readouterr().err
