"""The README and --help cannot drift from the commands."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from ivinex_mirror.cli import cli

README = (Path(__file__).parent.parent / "README.md").read_text()
COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert cli.commands[name].help.strip()
    assert f"ivinex-mirror {name}" in README


def test_the_ci_script_runs_the_readme_test_command():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    [command] = [line for line in ci.splitlines() if "pytest" in line]
    assert command.strip() in README
