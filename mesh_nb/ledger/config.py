"""Which store holds a product's ledger: the owner's configuration, else the contract, else SQLite.

In order, the first one set wins:

1. ``MESH_NB_LEDGER_URL`` in the environment of the process (every product it opens);
2. the file ``OWNER_DIR/ledger.url`` (one line; the owner's setting for that one product);
3. ``ledger:`` in the contract's ``meshNbPrivacy`` policy;
4. the SQLite file ``PRODUCT_FOLDER/.mesh_nb/ledger.sqlite``.

A value is ``sqlite`` (the default file) or a PostgreSQL URL, ``postgresql://`` or
``postgresql+psycopg://`` (both mean psycopg 3). A URL never carries a password: libpq takes it
from ``PGPASSFILE`` (default ``~/.pgpass``) or ``PGPASSWORD``, so contracts and owner files can
be shared and committed. This module imports nothing heavy: the contract model uses it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ..errors import MeshError

ENV_VAR = "MESH_NB_LEDGER_URL"
OWNER_HOME_VAR = "MESH_NB_OWNER_HOME"
#: Where older versions kept the owner's key and checkpoint: inside the product folder.
LEGACY_OWNER_DIR = ".owner"
_KEY_FILE = "ed25519.key"
OWNER_FILE = "ledger.url"
SQLITE = "sqlite"
_SCHEMES = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
            "postgresql+psycopg": "postgresql+psycopg"}


class LedgerUrlError(MeshError, ValueError):
    """A ledger setting that cannot be used; the message never repeats a password."""


#: libpq parameters that carry a secret, and name fragments that suggest one.
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
_SECRET_FRAGMENTS = ("pass", "secret", "token", "credential", "apikey", "api_key")


def _secret_parameter(query: str) -> bool:
    """Whether a URL's query string holds a password-like parameter, in any spelling (names
    are percent-decoded and compared case-insensitively)."""
    try:
        names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    except ValueError:
        return True
    for name in names:
        low = unquote(name).strip().lower()
        if low == "passfile":  # a path to the password file, as PGPASSFILE: not a secret
            continue
        if low in _SECRET_PARAMETERS or any(f in low for f in _SECRET_FRAGMENTS):
            return True
    # libpq's ``options`` can smuggle settings too; a password never belongs there
    return any(f in unquote(query).lower() for f in ("password", "sslpassword"))


def ledger_url(value: str) -> str:
    """``sqlite`` or a normalised ``postgresql+psycopg://`` URL; LedgerUrlError otherwise.

    Refuses a URL holding a password (the message does not quote the URL).
    """
    text = value.strip()
    if text.lower() == SQLITE:
        return SQLITE
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        raise LedgerUrlError("the ledger URL is malformed — use "
                             "postgresql+psycopg://USER@HOST:PORT/DATABASE") from None
    if password is not None or _secret_parameter(parts.query):
        raise LedgerUrlError(
            "the ledger URL holds a password or another secret — remove it from the URL and "
            "give it to libpq through PGPASSFILE (~/.pgpass) or PGPASSWORD instead")
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname or not parts.path.strip("/"):
        raise LedgerUrlError(
            f"ledger must be `{SQLITE}` or a PostgreSQL URL like "
            "postgresql+psycopg://USER@HOST:PORT/DATABASE (scheme "
            f"{parts.scheme or 'missing'!r}, host and database required)")
    return urlunsplit((scheme, *parts[1:]))


def configured_ledger(owner_dir: Path, contract_setting: str | None) -> str | None:
    """The PostgreSQL URL a product's ledger lives at, or None for the SQLite file.

    The owner's configuration (environment, then ``owner_dir/ledger.url``) wins over the
    contract's ``ledger:``. LedgerUrlError names which setting is wrong.
    """
    owner_file = Path(owner_dir) / OWNER_FILE
    candidates = ((f"${ENV_VAR}", lambda: os.environ.get(ENV_VAR)),
                  (str(owner_file), lambda: owner_file.read_text(encoding="utf-8")
                   if owner_file.is_file() else None),
                  ("the contract's `ledger:`", lambda: contract_setting))
    for source, read in candidates:
        value = read()
        if value and value.strip():
            try:
                url = ledger_url(value)
            except LedgerUrlError as exc:
                raise LedgerUrlError(f"{source}: {exc}") from None
            return None if url == SQLITE else url
    return None


def default_owner_home() -> Path:
    """The per-user folder that holds every product's owner directory by default:
    ``$XDG_STATE_HOME/mesh_nb/owners`` (``~/.local/state/mesh_nb/owners``)."""
    state = os.environ.get("XDG_STATE_HOME", "").strip()
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "mesh_nb" / "owners"


def owner_dir_for(folder: Path, product: str) -> Path:
    """Where the owner's key, signed checkpoint and pseudonym keys of ``product`` live.

    1. ``$MESH_NB_OWNER_HOME/PRODUCT`` when the owner sets it (one mesh per owner home);
    2. the per-user owner home (:func:`default_owner_home`) under ``PRODUCT-<hash of the
       product folder's real path>``, when it exists, or when there is no older ``.owner``
       folder inside the product folder;
    3. ``FOLDER/.owner``, which older versions created: still used, so existing ledgers keep
       their key (``mesh-nb ledger migrate`` moves it out).

    Outside the product folder by default, so restoring a backup of the folder or deleting
    its ledger cannot take the checkpoint back with it: the ledger is then shorter than the
    owner's checkpoint, which every reserve and verify report. An ``.owner`` folder that
    appears later does not win over an owner directory that exists.
    """
    legacy = Path(folder) / LEGACY_OWNER_DIR
    try:
        personal = personal_owner_dir(folder, product)
    except RuntimeError:  # no home directory to put it in
        return legacy
    if not personal.exists() and (legacy / _KEY_FILE).exists():
        return legacy
    return personal


def personal_owner_dir(folder: Path, product: str) -> Path:
    """The owner directory of ``product`` outside its folder (``MESH_NB_OWNER_HOME/PRODUCT``,
    else the per-user owner home), whether or not it exists yet."""
    home = os.environ.get(OWNER_HOME_VAR, "").strip()
    if home:
        return Path(home) / product
    try:
        real = Path(folder).resolve()
    except OSError:
        real = Path(os.path.abspath(folder))
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", product)[:64].strip("._") or "product"
    return default_owner_home() / f"{slug}-{digest}"


def move_owner_dir(folder: Path, product: str) -> Path | None:
    """Move an older in-folder ``.owner`` directory to :func:`personal_owner_dir`; the new
    place, or None when there is nothing to move. Refuses to merge into an existing one."""
    legacy = Path(folder) / LEGACY_OWNER_DIR
    if not (legacy / _KEY_FILE).exists():
        return None
    target = personal_owner_dir(folder, product)
    if target.exists():
        raise MeshError(f"both {legacy} and {target} exist: keep the one whose key signed the "
                        "ledger (mesh-nb ledger verify tells) and move the other away")
    import shutil

    from ..files import private_dir

    private_dir(target.parent)
    shutil.move(str(legacy), str(target))
    return private_dir(target)
