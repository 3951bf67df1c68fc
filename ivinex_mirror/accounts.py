"""The saved account: instance, user and password, kept in a JSON file of
its own, outside any database, readable by its owner alone.
"""

import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import click

logger = logging.getLogger(__name__)

ACCOUNT_FILE_ENV = "IVINEX_MIRROR_ACCOUNT_FILE"
APP_NAME = "ivinex-mirror"
KEYS = ("company", "username", "password")


class AccountFileError(Exception):
    """The saved account file cannot be used; the message says why and what
    to do. It never carries the file's content."""


@dataclass(frozen=True)
class Account:
    company: str
    username: str
    # Kept out of repr so that a logged or printed account shows no secret.
    password: str = field(repr=False)


def default_account_path():
    """IVINEX_MIRROR_ACCOUNT_FILE if set, else account.json in the user's
    configuration folder for ivinex-mirror."""
    override = os.environ.get(ACCOUNT_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(click.get_app_dir(APP_NAME)) / "account.json"


def save_account(company, username, password, path=None):
    """Write the account file, replacing any earlier one; returns its path.

    The file is mode 0600 from the moment it exists: it is written under a
    temporary name created with that mode, then renamed into place."""
    path = Path(path) if path is not None else default_account_path()
    _ensure_private_folder(path.parent)
    content = json.dumps(
        {"company": company, "username": username, "password": password},
        indent=2,
    )

    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".account-")
    try:
        os.chmod(temporary, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

    logger.info("Saved the account for %s at %s in %s", username, company, path)
    return path


def load_account(path=None):
    """The saved Account, or None when there is no account file."""
    path = Path(path) if path is not None else default_account_path()
    if not path.exists():
        return None
    if not path.is_file():
        raise AccountFileError(
            f"{path} is not a file; remove it or set {ACCOUNT_FILE_ENV}."
        )

    _check_private(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise AccountFileError(f"Cannot read {path}: {exc.strerror}.") from None

    try:
        content = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The decoder's error keeps the whole text, password included, so
        # only its position goes into the message and nothing is chained.
        where = getattr(exc, "lineno", None)
        detail = f" (line {where})" if where else ""
        raise AccountFileError(
            f"{path} is not a valid account file{detail}. Save the account "
            "again with `ivinex-mirror auth`."
        ) from None
    return _account_from(content, path)


def delete_account(path=None):
    """Remove the account file; True if there was one."""
    path = Path(path) if path is not None else default_account_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    logger.info("Removed the saved account %s", path)
    return True


def _ensure_private_folder(folder):
    if folder.is_dir():
        return
    folder.mkdir(parents=True, mode=0o700)
    # mkdir's mode passes through the umask, which could leave it wider on
    # some systems; set it outright.
    os.chmod(folder, 0o700)


def _check_private(path):
    # Windows has no such mode bits; its folder permissions protect the file.
    if os.name == "nt":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        problem = "readable"
    elif mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = "writable"
    else:
        return
    raise AccountFileError(
        f"{path} is {problem} by other users, so the password in it may have "
        f"been seen; run chmod 600 {path} (and change the password if "
        "others could read it)."
    )


def _account_from(content, path):
    if not isinstance(content, dict):
        raise AccountFileError(
            f"{path} does not hold an account (a JSON object with company, "
            "username and password). Save the account again with "
            "`ivinex-mirror auth`."
        )
    missing = [
        key
        for key in KEYS
        if not isinstance(content.get(key), str) or not content[key].strip()
    ]
    if missing:
        raise AccountFileError(
            f"{path} has no {', '.join(missing)}. Save the account again with "
            "`ivinex-mirror auth`."
        )
    return Account(content["company"], content["username"], content["password"])
