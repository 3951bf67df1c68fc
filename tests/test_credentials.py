"""A password given any supported way (IVINEX_PASSWORD, the saved account,
the hidden prompt) shows up nowhere: not in the database, a log line, an
error, a traceback, --help, or the process's command line."""

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivinex_mirror import accounts
from ivinex_mirror import cli as cli_module
from ivinex_mirror.cli import cli

from .conftest import PASSWORD

WAYS = ("environment", "saved account", "prompt")


def invoke(way, company, tmp_path, monkeypatch, *args):
    """Run the CLI with the password given `way`; returns the result."""
    account_file = tmp_path / "account.json"
    env = {"IVINEX_MIRROR_ACCOUNT_FILE": str(account_file), "IVINEX_PASSWORD": ""}
    options = ["--company", company, "--username", "demo"]
    stdin = None
    if way == "environment":
        env["IVINEX_PASSWORD"] = PASSWORD
    elif way == "saved account":
        accounts.save_account(company, "demo", PASSWORD, account_file)
        options = []
    else:
        monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
        stdin = PASSWORD + "\n"
    return CliRunner().invoke(cli, [*args, *options], env=env, input=stdin)


def files_under(folder):
    return [p for p in Path(folder).rglob("*") if p.is_file()]


@pytest.mark.parametrize("way", WAYS)
def test_a_sync_keeps_the_password_out_of_everything(
    way, sandbox, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    db_path = str(tmp_path / "data" / "m.db")
    os.makedirs(tmp_path / "data")
    result = invoke(way, sandbox.url, tmp_path, monkeypatch, "sync", db_path, "-v")

    assert result.exit_code == 0, result.output
    assert "GetRecords" in caplog.text
    assert PASSWORD not in result.output + caplog.text
    for path in files_under(tmp_path / "data"):  # the database, its WAL, the lock
        assert PASSWORD.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("way", WAYS)
def test_error_paths_keep_the_password_out(way, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    unreachable = f"http://127.0.0.1:{port}"
    db_path = str(tmp_path / "m.db")
    result = invoke(
        way, unreachable, tmp_path, monkeypatch, "sync", db_path, "-v", "--retries", "0"
    )

    assert result.exit_code == 1
    assert "Could not get an answer" in result.output
    assert "Traceback" not in result.output
    assert PASSWORD not in result.output + caplog.text


def test_a_wrong_password_message_does_not_repeat_it(sandbox, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-Pw-42"
    result = CliRunner().invoke(
        cli,
        ["sync", str(tmp_path / "m.db"), "-v"]
        + ["--company", sandbox.url, "--username", "demo"],
        env={"IVINEX_PASSWORD": wrong},
    )
    assert result.exit_code == 1 and "refused the username or password" in result.output
    assert wrong not in result.output + caplog.text


def test_help_never_shows_the_password():
    for command in (None, *cli.commands):
        args = [command, "--help"] if command else ["--help"]
        result = CliRunner().invoke(cli, args, env={"IVINEX_PASSWORD": PASSWORD})
        assert result.exit_code == 0
        assert PASSWORD not in result.output


@pytest.mark.parametrize("way", ["environment", "saved account"])
def test_the_command_line_never_carries_the_password(way, tmp_path):
    from ivinex_mirror.sandbox import SandboxServer, generate_instance

    account_file = tmp_path / "account.json"
    env = {**os.environ, "IVINEX_MIRROR_ACCOUNT_FILE": str(account_file)}
    env.pop("IVINEX_PASSWORD", None)
    instance = generate_instance(seed=2, scale=0.05)
    with SandboxServer(instance, password=PASSWORD, latency_ms=100) as server:
        args = [sys.executable, "-m", "ivinex_mirror", "sync", str(tmp_path / "m.db")]
        if way == "environment":
            env["IVINEX_PASSWORD"] = PASSWORD
            args += ["--company", server.url, "--username", "demo"]
        else:
            accounts.save_account(server.url, "demo", PASSWORD, account_file)
        process = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert process.wait(timeout=60) == 0
    assert b"ivinex_mirror" in command_line
    assert PASSWORD.encode() not in command_line


def test_an_account_file_others_can_read_is_refused(sandbox, tmp_path):
    account_file = tmp_path / "account.json"
    accounts.save_account(sandbox.url, "demo", PASSWORD, account_file)
    account_file.chmod(0o644)
    result = CliRunner().invoke(
        cli,
        ["sync", str(tmp_path / "m.db")],
        env={"IVINEX_MIRROR_ACCOUNT_FILE": str(account_file), "IVINEX_PASSWORD": ""},
    )
    assert result.exit_code == 1
    assert "chmod 600" in result.output and PASSWORD not in result.output


def test_insecure_warns_and_certificate_checks_are_on_by_default(
    sandbox, monkeypatch, tmp_path
):
    made = []
    real_client = cli_module.IvinexClient

    def recording_client(*args, **kwargs):
        made.append(kwargs["verify"])
        return real_client(*args, **kwargs)

    monkeypatch.setattr(cli_module, "IvinexClient", recording_client)
    base = ["report", "tabs", "--company", sandbox.url, "--username", "demo"]
    env = {"IVINEX_PASSWORD": PASSWORD}
    plain = CliRunner().invoke(cli, base, env=env)
    insecure = CliRunner().invoke(cli, [*base, "--insecure"], env=env)

    assert plain.exit_code == insecure.exit_code == 0
    assert made == [True, False]
    assert "--insecure" not in plain.output
    assert "turns off HTTPS certificate checks" in insecure.output


def test_auth_checks_the_account_before_saving_and_deletes_without_asking(
    sandbox, tmp_path
):
    account_file = tmp_path / "account.json"
    env = {"IVINEX_MIRROR_ACCOUNT_FILE": str(account_file)}
    args = ["auth", "--company", sandbox.url, "--username", "demo"]

    wrong = CliRunner().invoke(cli, args, env={**env, "IVINEX_PASSWORD": "nope"})
    assert wrong.exit_code == 1 and not account_file.exists()
    assert "refused the username or password" in wrong.output

    right = CliRunner().invoke(cli, args, env={**env, "IVINEX_PASSWORD": PASSWORD})
    assert right.exit_code == 0, right.output
    assert "sees 10 tabs" in right.output
    assert account_file.stat().st_mode & 0o777 == 0o600
    assert PASSWORD not in right.output

    gone = CliRunner().invoke(cli, ["auth", "--delete"], env=env, input="")
    assert gone.exit_code == 0 and "removed" in gone.output
    assert not account_file.exists()
