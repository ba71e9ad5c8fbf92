"""Pseudonymized rows: keyed tokens for identifiers, declared generalization for quasi-identifiers.

Tokens are HMAC-SHA256 under a per-purpose key kept in the owner's folder, so they are stable
within a purpose (joins and counts of repeat customers still work) and unlinkable across
purposes; nobody without the owner's key can recompute them from a guessed value.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

TOKEN_HEX = 16  # 64 bits of token: collisions negligible at product scale


def purpose_key(owner_dir: Path, purpose: str) -> bytes:
    """The owner's secret key for ``purpose`` (created on first use, mode 0600)."""
    owner_dir = Path(owner_dir)
    owner_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = owner_dir / f"pseudonym-{purpose}.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        key = secrets.token_bytes(32)
        f.write(key.hex())
    return key


def tokenize(values: pd.Series, key: bytes, column: str) -> pd.Series:
    """``tok_`` + HMAC-SHA256(key, column + value), nulls stay null."""
    prefix = column.encode() + b"\x00"

    def one(v: object) -> object:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        digest = hmac.new(key, prefix + str(v).encode(), hashlib.sha256).hexdigest()
        return "tok_" + digest[:TOKEN_HEX]

    uniques = pd.unique(values)
    mapping = {u: one(u) for u in uniques}
    return values.map(mapping).astype(object)


def generalize(values: pd.Series, spec: dict) -> pd.Series:
    """Coarsen one column as the contract declares: ``bin``, ``truncate`` or ``prefix``."""
    if "bin" in spec:
        width = float(spec["bin"])
        return np.floor(pd.to_numeric(values) / width) * width
    if "truncate" in spec:
        unit = {"year": "Y", "month": "M", "day": "D"}[spec["truncate"]]
        dates = pd.to_datetime(values)
        return dates.dt.to_period(unit).dt.start_time
    if "prefix" in spec:
        n = int(spec["prefix"])
        text = values.astype("string")
        return text.str.slice(0, n) + text.str.len().sub(n).clip(lower=0).map(
            lambda k: "*" * int(k) if pd.notna(k) else "")
    raise ValueError(f"unknown generalization {sorted(spec)}")
