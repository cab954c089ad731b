#!/usr/bin/env python3
"""Load generator and checker of the fault test (tests/fault/run.sh).

Standard library only.

    FAULT_CLIENT_SECRET=S load.py run --out FILE --stop FILE --target NAME=URL ... --client-id ID
        Sends client_credentials token requests (RFC 6749 §4.4) to every
        target from a few threads each, paced, until the stop file exists.
        Every request is one JSON line in FILE: start and end time (wall
        clock, the same clock as `date +%s.%N` in run.sh), target, HTTP
        status (or the transport error), Retry-After, the RFC 6749 §5.2
        `error`, and for a 200 the access token's `jti`.

    load.py check --records FILE --marks FILE --audit-jtis FILE --results FILE
        Applies the assertions of each phase to the records, using the
        times run.sh wrote to the marks file, and compares the recorded
        jtis with those of the `oidc.token_issued` audit events. Prints one
        `fault: ok|FAIL ...` line per check and writes "passed failed" to
        the results file.
"""

import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from collections import Counter

PREFIX = "fault:"


# --- run ---------------------------------------------------------------------


def jti_of(access_token):
    """The `jti` of a JWT access token (RFC 9068 §2.2), without verifying it:
    the audit comparison only needs the identifier."""
    try:
        payload = access_token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return json.loads(base64.urlsafe_b64decode(payload)).get("jti")
    except (IndexError, ValueError, AttributeError):
        return None


class Worker(threading.Thread):
    def __init__(self, name, url, args, sink):
        super().__init__(daemon=True)
        self.target = name
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.args = args
        self.sink = sink
        self.conn = None
        # client_secret_basic (RFC 6749 §2.3.1); the secret comes from the
        # environment, not the command line other users can read.
        credentials = f"{args.client_id}:{os.environ['FAULT_CLIENT_SECRET']}".encode()
        self.headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        self.body = "grant_type=client_credentials"

    def one(self):
        record = {"target": self.target, "t0": time.time()}
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.timeout)
            self.conn.request("POST", "/token", body=self.body, headers=self.headers)
            response = self.conn.getresponse()
            raw = response.read()
            record["status"] = response.status
            retry_after = response.getheader("Retry-After")
            if retry_after is not None:
                record["retry_after"] = retry_after
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict):
                if response.status == 200:
                    record["jti"] = jti_of(body.get("access_token"))
                elif "error" in body:
                    record["error"] = body["error"]
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as e:
            record["status"] = None
            record["exc"] = type(e).__name__
            if self.conn is not None:
                self.conn.close()
            self.conn = None
        record["t1"] = time.time()
        self.sink(record)

    def run(self):
        interval = 1.0 / self.args.rate
        while not os.path.exists(self.args.stop):
            started = time.monotonic()
            self.one()
            # A refused connection (the killed instance) answers at once:
            # pace every outcome the same.
            time.sleep(max(0.0, interval - (time.monotonic() - started)))


def run(args):
    lock = threading.Lock()
    out = open(args.out, "a", encoding="utf-8")

    def sink(record):
        line = json.dumps(record, separators=(",", ":"))
        with lock:
            out.write(line + "\n")
            out.flush()

    workers = []
    for spec in args.target:
        name, _, url = spec.partition("=")
        for _ in range(args.threads):
            workers.append(Worker(name, url, args, sink))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.close()


# --- check -------------------------------------------------------------------


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"{PREFIX} ok   - {what}" + (f" ({detail})" if detail else ""))
        else:
            self.failed += 1
            print(f"{PREFIX} FAIL - {what}" + (f": {detail}" if detail else ""))


def read_marks(path):
    marks = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            at, _, name = line.strip().partition(" ")
            if name:
                marks[name] = float(at)
    return marks


def describe(records):
    """`200×12 503×3 ConnectionRefusedError×2`: a compact tally."""
    tally = Counter(r["status"] if r["status"] is not None else r.get("exc") for r in records)
    return " ".join(f"{k}×{v}" for k, v in sorted(tally.items(), key=lambda kv: str(kv[0]))) or "none"


def within(records, start, end, target=None):
    """Requests that started and ended inside [start, end]."""
    return [r for r in records if r["t0"] >= start and r["t1"] <= end and (target is None or r["target"] == target)]


def overlapping(records, start, end, target=None):
    """Requests that were in flight at some moment of [start, end]."""
    return [r for r in records if r["t1"] >= start and r["t0"] <= end and (target is None or r["target"] == target)]


def first_after(records, at, target):
    later = [r for r in records if r["t0"] >= at and r["target"] == target]
    return min(later, key=lambda r: r["t0"]) if later else None


def honest_503(r):
    """RFC 9110 §15.6.4 with §10.2.3, and RFC 6749 §5.2's error code."""
    return r["status"] == 503 and r.get("retry_after") is not None and r.get("error") == "temporarily_unavailable"


def check(args):
    records = []
    with open(args.records, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by the end of the run
    m = read_marks(args.marks)
    targets = sorted({r["target"] for r in records})
    c = Checks()
    # The per-phase counts (what the run measured) go to a summary too.
    summary = []

    def phase(name, rs):
        summary.append(f"{name}: {describe(rs)}")
        return rs

    print(f"{PREFIX} {len(records)} token requests recorded to {', '.join(targets)}")

    # Never a 500 (nor any status but 200 and 503) for the whole run.
    others = [r for r in records if r["status"] is not None and r["status"] not in (200, 503)]
    c.check(not others, "no response other than 200 or 503 in the whole run", describe(others) if others else "")

    # (a) steady load.
    steady = phase("a steady", within(records, m["steady_start"], m["steady_end"]))
    c.check(
        steady and all(r["status"] == 200 for r in steady) and {r["target"] for r in steady} == set(targets),
        "(a) steady load: every request to both instances is 200",
        describe(steady),
    )

    # (b1) pg_ctl restart -m fast.
    during = phase("b1 restart", overlapping(records, m["restart_begin"], m["restart_done"]))
    bad = [r for r in during if r["status"] != 200 and not honest_503(r)]
    c.check(not bad, "(b1) during pg_ctl restart: only 200 or 503 + Retry-After + temporarily_unavailable", describe(during))
    for t in targets:
        r = first_after(records, m["restart_done"], t)
        c.check(
            r is not None and r["status"] == 200,
            f"(b1) the first request to {t} after the restart succeeds",
            "" if r is None else describe([r]),
        )
    after = phase("b1 after", within(records, m["restart_done"], m["stop_begin"]))
    c.check(after and all(r["status"] == 200 for r in after), "(b1) every request after the restart is 200", describe(after))

    # (b2) pg_ctl stop, an outage, pg_ctl start.
    down = phase("b2 outage", within(records, m["stopped"], m["start_begin"]))
    bad = [r for r in down if not honest_503(r)]
    c.check(
        down and not bad and {r["target"] for r in down} == set(targets),
        "(b2) while PostgreSQL is down: only 503 + Retry-After + temporarily_unavailable, from both",
        describe(down),
    )
    slowest = max((r["t1"] - r["t0"] for r in down), default=0.0)
    # The issue asks for ~2 s at most (the checkout timeout); the bound
    # leaves room for a loaded CI machine without hiding a hang.
    c.check(slowest < args.max_outage_secs, f"(b2) outage answers come fast (< {args.max_outage_secs:g} s)", f"slowest {slowest:.2f} s")
    edges = phase(
        "b2 edges",
        overlapping(records, m["stop_begin"], m["stopped"]) + overlapping(records, m["start_begin"], m["started"]),
    )
    bad = [r for r in edges if r["status"] != 200 and not honest_503(r)]
    c.check(not bad, "(b2) while stopping and starting: only 200 or 503 + Retry-After", describe(edges))
    for t in targets:
        r = first_after(records, m["started"], t)
        c.check(
            r is not None and r["status"] == 200,
            f"(b2) the first request to {t} after PostgreSQL is back succeeds",
            "" if r is None else describe([r]),
        )
    after = phase("b2 after", within(records, m["started"], m["kill"]))
    c.check(after and all(r["status"] == 200 for r in after), "(b2) every request once PostgreSQL is back is 200", describe(after))

    # (c) one instance killed with SIGKILL mid-load.
    victim, survivor = args.victim, args.survivor
    killed = phase(f"c {survivor} while {victim} is dead", within(records, m["kill"], m["victim_restarted"], survivor))
    c.check(
        killed and all(r["status"] == 200 for r in killed),
        f"(c) {victim} killed with SIGKILL: {survivor} keeps serving, all 200",
        describe(killed),
    )
    phase(f"c {victim} while dead", within(records, m["kill"], m["victim_restarted"], victim))
    back = phase(f"c {victim} restarted", within(records, m["victim_restarted"], m["sigstop"], victim))
    c.check(back and all(r["status"] == 200 for r in back), f"(c) {victim} serves again after its restart", describe(back))

    # (d) one instance frozen with SIGSTOP.
    frozen = phase(f"d {survivor} while {victim} is stopped", within(records, m["sigstop"], m["sigcont"], survivor))
    issued = [r for r in frozen if r["status"] == 200]
    c.check(
        len(issued) > 0,
        f"(d) {victim} SIGSTOPped: {survivor} keeps issuing tokens meanwhile",
        f"{len(issued)} tokens; {describe(frozen)}",
    )
    phase(f"d {victim} in flight while stopped", overlapping(records, m["sigstop"], m["sigcont"], victim))
    resumed = phase(f"d {victim} after SIGCONT", within(records, m["settled"], m["load_end_d"], victim))
    c.check(
        resumed and all(r["status"] == 200 for r in resumed),
        f"(d) {victim} serves again after SIGCONT",
        describe(resumed),
    )
    phase("d both at the end", within(records, m["settled"], m["load_end_d"]))

    # (e) PostgreSQL frozen: answers while it hangs are 200 (work that got
    # through before) or honest 503s, and come promptly; after it thaws,
    # every request succeeds.
    hung = phase("e while frozen", overlapping(records, m["frozen"], m["thaw"]))
    bad = [r for r in hung if r["status"] != 200 and not honest_503(r)]
    c.check(hung and not bad, "(e) while PostgreSQL is frozen: only 200 or 503 + Retry-After", describe(hung))
    # Issue 10 item 13, "while the database is ... hanging, answer fast": a
    # frozen server still acknowledges at the TCP level, so no server-side
    # timeout can fire; wxfed's request deadline (WXFED_DATABASE_REQUEST_TIMEOUT_MS)
    # answers 503 instead of waiting for the thaw.
    started_frozen = within(records, m["frozen"], m["thaw"])
    waits = sorted(r["t1"] - r["t0"] for r in hung if r["t0"] >= m["frozen"])
    slowest = waits[-1] if waits else 0.0
    summary.append(f"e waits of requests sent while frozen: slowest {slowest:.2f} s of {len(waits)}")
    c.check(
        started_frozen and all(honest_503(r) for r in started_frozen),
        "(e) requests started and answered while PostgreSQL is frozen are 503s",
        describe(started_frozen),
    )
    c.check(
        bool(waits) and slowest < args.max_outage_secs,
        f"(e) requests sent to a frozen PostgreSQL are answered within {args.max_outage_secs:g} s",
        f"slowest {slowest:.2f} s of {len(waits)}",
    )
    thawed = phase("e after thaw", within(records, m["thawed"], m["load_end"]))
    c.check(thawed and all(r["status"] == 200 for r in thawed), "(e) every request after the thaw is 200", describe(thawed))

    # Every 200 has exactly one audit event, and every jti is unique.
    with open(args.audit_jtis, encoding="utf-8") as f:
        audited = Counter(line.strip() for line in f if line.strip())
    ok = [r for r in records if r["status"] == 200]
    jtis = Counter(r.get("jti") for r in ok)
    missing_jti = jtis.pop(None, 0)
    c.check(missing_jti == 0, "every 200 carries an access token with a jti", f"{missing_jti} without")
    twice = [j for j, n in jtis.items() if n > 1]
    c.check(not twice, "no jti was handed out twice", f"{len(twice)} repeated, e.g. {twice[:3]}" if twice else f"{len(jtis)} distinct")
    unaudited = [j for j in jtis if audited.get(j, 0) == 0]
    duplicated = [j for j in jtis if audited.get(j, 0) > 1]
    c.check(
        not unaudited and not duplicated,
        "every 200 token response has exactly one oidc.token_issued audit event",
        f"{len(jtis)} tokens, {sum(audited.values())} events"
        + (f"; {len(unaudited)} without an event, e.g. {unaudited[:3]}" if unaudited else "")
        + (f"; {len(duplicated)} with several, e.g. {duplicated[:3]}" if duplicated else ""),
    )
    # Events without a 200 are possible (a killed instance that committed
    # but never answered, a response lost in a timeout), never the reverse.
    extra = [j for j in audited if j not in jtis]
    print(f"{PREFIX} note: {len(extra)} token_issued events without a recorded 200 (in flight at a kill, stop or timeout)")
    doubled = [j for j, n in audited.items() if n > 1]
    c.check(not doubled, "no token_issued event is recorded twice", f"{len(doubled)} doubled" if doubled else "")

    for line in summary:
        print(f"{PREFIX} counts {line}")
    with open(args.results, "w", encoding="utf-8") as f:
        f.write(f"{c.passed} {c.failed}\n")
    return 0 if c.failed == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--stop", required=True, help="the generator stops once this file exists")
    r.add_argument("--target", action="append", required=True, help="NAME=http://host:port")
    r.add_argument("--client-id", required=True)
    r.add_argument("--threads", type=int, default=2, help="threads per target")
    r.add_argument("--rate", type=float, default=20.0, help="requests per second per thread, at most")
    r.add_argument("--timeout", type=float, default=15.0, help="socket timeout per request")
    k = sub.add_parser("check")
    k.add_argument("--records", required=True)
    k.add_argument("--marks", required=True)
    k.add_argument("--audit-jtis", required=True)
    k.add_argument("--results", required=True)
    k.add_argument("--victim", required=True, help="the instance killed and stopped")
    k.add_argument("--survivor", required=True)
    k.add_argument("--max-outage-secs", type=float, default=5.0)
    args = parser.parse_args()
    if args.command == "run":
        run(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
