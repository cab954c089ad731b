#!/usr/bin/env python3
"""Verify a wxfed audit export (JSON Lines) without wxfed.

    python3 scripts/verify-audit-export.py EXPORT.jsonl --public-key KEY [--public-key OLD ...]

KEY is the audit public key (`wxfed audit key show`): base64 of its 32 raw
bytes. Needs only the `cryptography` package for Ed25519. An independent
reading of docs/audit.md ("Self-verifying export"), so that an auditor need
not trust wxfed's own verifier: it recomputes every link (SHA-256 over
compact JSON), checks that rows follow each other without gaps between the
start and end checkpoints, and checks both signatures. Exit 0 when the
export is intact, 1 naming the first bad line.
"""

import argparse
import base64
import hashlib
import json
import sys
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
META = ["seq", "id", "occurred_at", "category", "action", "outcome", "actor", "account_id", "client_id", "request_id"]


def compact(value):
    # serde_json's compact form: no spaces, non-ASCII as UTF-8.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def content_hash(line):
    content = {k: line.get(k) for k in ["reason", "ip", "user_agent", "detail"]}
    return sha256_hex(compact({"salt": line["content_salt"], **content}))


def link_hash(prev_hash, line, chash):
    body = {"v": 2, **{k: line.get(k) for k in META}, "content_hash": chash}
    return sha256_hex(prev_hash.encode() + b"\n" + compact(body))


def signed_bytes(c):
    return "\n".join(
        ["wxfed-audit-checkpoint-v1", str(c["seq"]), c["head_hash"], c["signed_at"], c["prev_checkpoint_hash"] or "", c["key_id"]]
    ).encode()


def signature_ok(keys, c):
    for key in keys:
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(base64.b64decode(c["signature"]), signed_bytes(c))
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def parse_time(value):
    if len(value) == 10:  # a date: that day, UTC
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Bad(Exception):
    pass


def verify(lines, keys):
    header = lines[0] if lines else None
    if not header or header.get("type") != "header" or header.get("format") != "wxfed-audit-export-v1":
        raise Bad(1, "the export does not start with its header line")
    start_from = header["filters"].get("from")
    i = 1
    while i < len(lines) and lines[i]["type"] == "key":
        i += 1
    expected, prev = 1, GENESIS
    if i < len(lines) and lines[i]["type"] == "checkpoint" and lines[i]["role"] == "start":
        c = lines[i]
        if not signature_ok(keys, c):
            raise Bad(i + 1, "the start checkpoint's signature does not verify with the given keys")
        if start_from and parse_time(c["signed_at"]) > parse_time(start_from):
            raise Bad(i + 1, "the start checkpoint was signed after `from`: first rows cut off")
        expected, prev = c["seq"] + 1, c["head_hash"]
        i += 1
    counts = {"event": 0, "omitted": 0, "pruned": 0}
    while i < len(lines) and lines[i]["type"] in counts:
        row = lines[i]
        if row["seq"] != expected:
            raise Bad(i + 1, f"expected row {expected}, found row {row['seq']}")
        if row["prev_hash"] != prev:
            raise Bad(i + 1, "does not link to the line before it")
        if row["link_version"] == 2:
            chash = row["content_hash"]
            if row["type"] == "event" and content_hash(row) != chash:
                raise Bad(i + 1, "the event's content does not match its hash")
            if link_hash(prev, row, chash) != row["hash"]:
                raise Bad(i + 1, "the row does not match its hash")
        counts[row["type"]] += 1
        expected, prev = row["seq"] + 1, row["hash"]
        i += 1
    if i >= len(lines) or lines[i]["type"] != "checkpoint" or lines[i]["role"] != "end":
        raise Bad(min(i + 1, len(lines)), "no end checkpoint here: lines were dropped, reordered or added")
    end = lines[i]
    if not signature_ok(keys, end):
        raise Bad(i + 1, "the end checkpoint's signature does not verify with the given keys")
    if end["seq"] != expected - 1 or end["head_hash"] != prev:
        raise Bad(i + 1, "the end checkpoint does not sign the last row")
    if i + 1 != len(lines):
        raise Bad(i + 2, "lines after the end checkpoint")
    return counts, end


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--public-key", action="append", required=True)
    args = parser.parse_args()
    with open(args.export, encoding="utf-8") as f:
        raw = f.read().splitlines()
    lines = []
    for number, text in enumerate(raw, 1):
        try:
            lines.append(json.loads(text))
        except ValueError:
            print(f"export BROKEN: line {number}: not JSON")
            return 1
    try:
        counts, end = verify(lines, args.public_key)
    except Bad as bad:
        print(f"export BROKEN: line {bad.args[0]}: {bad.args[1]}")
        return 1
    except (KeyError, TypeError) as error:
        print(f"export BROKEN: a line lacks a field ({error})")
        return 1
    print(f"export OK: {counts['event']} events, {counts['omitted']} omitted, {counts['pruned']} pruned; signed up to row {end['seq']} at {end['signed_at']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
