"""The CLI lists its commands and fails clearly on bad configuration."""

from typer.testing import CliRunner

from flows.cli import app


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "validate"):
        assert command in result.output
