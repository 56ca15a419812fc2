#!/usr/bin/env python3
"""Checks a copy of the Cloud Ingest audit log without Orthanc.

    verify-audit.py [--key-file FILE] [--head-seq N --head-sha256 HEX] [--partial] LOG [LOG ...]

Give the files of a rotated log oldest first (audit.jsonl.2 audit.jsonl.1
audit.jsonl): the chain runs on from one file into the next. A first file
that starts after seq 1 is not intact (its predecessors were deleted,
truncated or rotated away: give them first), unless --partial says that the
older files are gone on purpose (expired by logrotate). With --key-file
(AuditKey, the file's whole content with one trailing newline removed) every
record's hmac is checked too. --head-seq/--head-sha256 (from the plugin's
GET /cloud-ingest/audit/verify or its database) also find a cut tail.

Prints {"ok", "records", "first_bad_seq", "reason"} as JSON; exits 0 when
the log is intact, 1 when it is not, 2 on a usage error. Python 3 standard
library only. The rules are those of Plugin/Core/Audit/AuditChain.cpp.
"""

import argparse
import hashlib
import hmac
import json
import sys

ZERO = "0" * 64
HMAC_KEY = ',"hmac":"'


def split_hmac(line):
    """(the record as signed, its hmac) or (line, "") when it has none."""
    at = line.rfind(HMAC_KEY)
    if at < 0 or at + len(HMAC_KEY) + 64 + 2 != len(line) or not line.endswith('"}'):
        return line, ""
    return line[:at] + "}", line[at + len(HMAC_KEY):at + len(HMAC_KEY) + 64]


def verify(lines, key, head_seq=None, head_sha256=None, partial=False):
    result = {"ok": True, "records": 0, "first_bad_seq": None, "reason": ""}

    def bad(seq, reason):
        result.update(ok=False, first_bad_seq=seq, reason=reason)
        return result

    expected = None
    first = None
    previous = ZERO
    legacy = 0
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            record = json.loads(line)
            parsed = isinstance(record, dict)
        except ValueError:
            parsed = False
        if not parsed or "seq" not in record:
            if expected is None:
                legacy += 1
                continue
            return bad(expected, "line %d %s" % (number, "has no seq (inserted)" if parsed
                                                 else "is not a JSON record"))
        seq, prev = record.get("seq"), record.get("prev_sha256")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(prev, str):
            return bad(expected or 0, "line %d has a malformed seq or prev_sha256" % number)
        if expected is None:
            first = seq
            if seq == 1 and prev != ZERO:
                return bad(1, "record 1 must have prev_sha256 of 64 zeros")
        elif seq != expected:
            if seq > expected:
                return bad(expected, "record %d is missing (found seq %d)" % (expected, seq))
            return bad(expected, "seq %d out of order where %d was expected" % (seq, expected))
        if key is not None:
            signed, mac = split_hmac(line)
            if not mac:
                return bad(seq, "record %d has no hmac" % seq)
            want = hmac.new(key, signed.encode("utf-8"), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, mac):
                return bad(seq, "record %d has a wrong hmac (edited or forged)" % seq)
        if expected is not None and prev != previous:
            return bad(seq - 1, "record %d was changed (record %d's prev_sha256 does not match it)"
                       % (seq - 1, seq))
        previous = hashlib.sha256(line.encode("utf-8")).hexdigest()
        expected = seq + 1
        result["records"] += 1

    last = expected - 1 if expected is not None else 0
    if head_seq is not None:
        if last < head_seq:
            return bad(last + 1, "the tail was cut: records %d to %d are missing"
                       % (last + 1, head_seq))
        if last > head_seq:
            return bad(head_seq + 1, "records after seq %d were added" % head_seq)
        if head_sha256 and previous != head_sha256:
            return bad(last, "record %d was changed (its hash differs from the head's)" % last)
    if first is not None and first > 1 and not partial:
        return bad(first - 1, "the first file starts at seq %d: records 1 to %d were deleted, "
                   "truncated or rotated away (give the older files first, or --partial)"
                   % (first, first - 1))
    notes = []
    if legacy:
        notes.append("%d earlier line(s) without seq (written before the chain) are not covered"
                     % legacy)
    if first is not None and first > 1:
        notes.append("the first file starts at seq %d (--partial: earlier records not checked)"
                     % first)
    if key is None:
        notes.append("hmacs not checked (no key)")
    result["reason"] = "; ".join(notes) or "intact"
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", help="audit files, oldest first")
    parser.add_argument("--key-file", help="file holding AuditKey")
    parser.add_argument("--head-seq", type=int, help="the last seq the plugin wrote")
    parser.add_argument("--head-sha256", help="the hash of the last record the plugin wrote")
    parser.add_argument("--partial", action="store_true",
                        help="the first file may start after seq 1 (older files expired)")
    args = parser.parse_args(argv)
    key = None
    if args.key_file:
        with open(args.key_file, "rb") as f:
            key = f.read()
        if key.endswith(b"\n"):
            key = key[:-1]
    lines = []
    for path in args.logs:
        with open(path, "rb") as f:
            lines += f.read().decode("utf-8", "replace").split("\n")
    result = verify(lines, key, args.head_seq, args.head_sha256, args.partial)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
