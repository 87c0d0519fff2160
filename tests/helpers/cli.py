"""Run the ``kmedqa`` command in the test process."""

from __future__ import annotations


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``kmedqa ARGV`` in this process: (exit status, stdout, stderr)."""
    from kmedqa.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err
