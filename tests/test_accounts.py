"""The saved account file: private from the start, refused when it is not."""

import json
import os
import stat
from pathlib import Path

import click
import pytest

from ivinex_mirror.accounts import (
    Account,
    AccountFileError,
    default_account_path,
    delete_account,
    load_account,
    save_account,
)

COMPANY = "https://acme.ivinex.com"
SECRET = "s3cret-Pa55"

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_round_trip(tmp_path):
    path = tmp_path / "account.json"

    returned = save_account(COMPANY, "demo", SECRET, path=path)

    assert returned == path
    assert load_account(path) == Account(COMPANY, "demo", SECRET)
    assert json.loads(path.read_text()) == {
        "company": COMPANY,
        "username": "demo",
        "password": SECRET,
    }


def test_saving_again_replaces_the_account(tmp_path):
    path = tmp_path / "account.json"
    save_account(COMPANY, "demo", SECRET, path=path)

    save_account(COMPANY, "other", "another-secret", path=path)

    assert load_account(path).username == "other"
    assert [p.name for p in tmp_path.iterdir()] == ["account.json"]


@posix_only
def test_file_is_private_right_after_save_even_with_an_open_umask(tmp_path):
    path = tmp_path / "config" / "ivinex-mirror" / "account.json"
    previous = os.umask(0)
    try:
        save_account(COMPANY, "demo", SECRET, path=path)
    finally:
        os.umask(previous)

    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700


@posix_only
def test_file_readable_by_others_is_refused_with_the_chmod_hint(tmp_path):
    path = tmp_path / "account.json"
    save_account(COMPANY, "demo", SECRET, path=path)
    os.chmod(path, 0o644)

    with pytest.raises(AccountFileError) as caught:
        load_account(path)

    message = str(caught.value)
    assert "readable by other users" in message
    assert f"chmod 600 {path}" in message
    assert SECRET not in message


@posix_only
def test_file_writable_by_the_group_is_refused(tmp_path):
    path = tmp_path / "account.json"
    save_account(COMPANY, "demo", SECRET, path=path)
    os.chmod(path, 0o620)

    with pytest.raises(AccountFileError, match="writable by other users"):
        load_account(path)


def test_password_is_absent_from_repr_and_str(tmp_path):
    path = tmp_path / "account.json"
    save_account(COMPANY, "demo", SECRET, path=path)

    account = load_account(path)

    assert account.password == SECRET
    assert SECRET not in repr(account)
    assert SECRET not in str(account)
    assert "demo" in repr(account)


def test_no_file_means_no_account(tmp_path):
    assert load_account(tmp_path / "absent.json") is None


def test_broken_json_is_refused_without_showing_the_content(tmp_path):
    path = tmp_path / "account.json"
    path.write_text('{"company": "x", "password": "' + SECRET + '"')
    os.chmod(path, 0o600)

    with pytest.raises(AccountFileError) as caught:
        load_account(path)

    assert "not a valid account file" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "content",
    [
        {"company": COMPANY, "username": "demo"},
        {"company": COMPANY, "username": "", "password": SECRET},
        {"company": COMPANY, "username": 7, "password": SECRET},
        ["not", "an", "object"],
    ],
)
def test_incomplete_account_is_refused(tmp_path, content):
    path = tmp_path / "account.json"
    path.write_text(json.dumps(content))
    os.chmod(path, 0o600)

    with pytest.raises(AccountFileError, match="ivinex-mirror auth"):
        load_account(path)


def test_delete(tmp_path):
    path = tmp_path / "account.json"
    save_account(COMPANY, "demo", SECRET, path=path)

    assert delete_account(path) is True
    assert not path.exists()
    assert delete_account(path) is False


def test_default_path_honours_the_environment(tmp_path, monkeypatch):
    chosen = tmp_path / "elsewhere" / "my-account.json"
    monkeypatch.setenv("IVINEX_MIRROR_ACCOUNT_FILE", str(chosen))

    assert default_account_path() == chosen
    save_account(COMPANY, "demo", SECRET)
    assert load_account() == Account(COMPANY, "demo", SECRET)
    assert chosen.is_file()


def test_default_path_is_in_the_app_folder(monkeypatch):
    monkeypatch.delenv("IVINEX_MIRROR_ACCOUNT_FILE", raising=False)

    expected = Path(click.get_app_dir("ivinex-mirror")) / "account.json"
    assert default_account_path() == expected
