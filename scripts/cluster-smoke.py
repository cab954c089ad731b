#!/usr/bin/env python3
"""The smoke test of scripts/cluster.sh (issue 12 §6), stdlib only.

Against two wxfed instances (A, B) on one database and nginx in front:
- nginx answers discovery with the shared issuer and balances over both;
- a password login and /authorize on A, the code redeemed at /token on B,
  the ID token's key published by both, userinfo through nginx, and the
  same code refused when replayed at A;
- throttling through nginx counts the client's address (X-Forwarded-For
  from a trusted proxy), not nginx's;
- `wxfed keys rotate`: the new keys appear in both instances' JWKS within
  the key reload interval.

Prints `cluster: PASS - …` / `cluster: FAIL - …` lines; exit status 1 when
anything failed.
"""

import argparse
import base64
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse

failures = 0


def check(ok, what, detail=""):
    global failures
    if ok:
        print(f"cluster: PASS - {what}", flush=True)
    else:
        failures += 1
        print(f"cluster: FAIL - {what}{': ' + detail if detail else ''}", flush=True)
    return ok


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def request(base, method, path, headers=None, body=None, cookies=None):
    """One request, no redirects followed; `cookies` (a dict) is sent and
    updated from Set-Cookie, like a browser's jar for one host."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if cookies is not None:
            for value in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                cookies[name.strip()] = rest.split(";", 1)[0]
        return Response(resp.status, resp.headers, data)
    finally:
        conn.close()


def path_of(location):
    """The path and query of a Location (absolute or relative)."""
    parts = urllib.parse.urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def form_field(page, name):
    match = re.search(r'name="%s"\s+value="([^"]*)"' % re.escape(name), page)
    return html.unescape(match.group(1)) if match else None


def jwks_kids(base):
    resp = request(base, "GET", "/jwks.json")
    if resp.status != 200:
        return set()
    return {key.get("kid") for key in resp.json().get("keys", [])}


def jwt_header(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def login(base, username, password, cookies, forwarded_for=None, return_to=None):
    """The login form: fetched, then posted; the response to the post."""
    extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    path = "/login" + ("?" + urllib.parse.urlencode({"return_to": return_to}) if return_to else "")
    page = request(base, "GET", path, headers=extra, cookies=cookies)
    token = form_field(page.text(), "csrf_token")
    form = {"username": username, "password": password, "csrf_token": token or ""}
    target = form_field(page.text(), "return_to") or return_to
    if target:
        form["return_to"] = target
    return request(base, "POST", "/login", headers=extra, body=form, cookies=cookies)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lb", required=True)
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--redirect-uri", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--throttle-username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--wxfed", required=True)
    p.add_argument("--reload-secs", type=int, required=True)
    p.add_argument("--max-failures", type=int, required=True)
    args = p.parse_args()
    client_secret = os.environ["CLUSTER_CLIENT_SECRET"]
    lb, a, b = args.lb.rstrip("/"), args.a.rstrip("/"), args.b.rstrip("/")

    # --- nginx in front of both ---------------------------------------
    disco = request(lb, "GET", "/.well-known/openid-configuration")
    check(
        disco.status == 200 and disco.json().get("issuer") == lb,
        "discovery through nginx names the balancer as issuer",
        f"{disco.status} {disco.text()[:200]}",
    )
    upstreams = {request(lb, "GET", "/readyz").header("X-Upstream") for _ in range(6)}
    a_addr, b_addr = urllib.parse.urlsplit(a).netloc, urllib.parse.urlsplit(b).netloc
    check({a_addr, b_addr} <= upstreams, "nginx balances over both instances", f"answered by {sorted(upstreams)}")

    # --- login and authorize on A, the code redeemed on B -------------
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    authorize = "/authorize?" + urllib.parse.urlencode(
        {
            "client_id": args.client_id,
            "redirect_uri": args.redirect_uri,
            "response_type": "code",
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    jar = {}
    first = request(a, "GET", authorize, cookies=jar)
    to_login = first.header("Location") or ""
    check(first.status in (302, 303) and "/login" in to_login, "A sends an anonymous /authorize to its login page",
          f"{first.status} {to_login}")
    page = request(a, "GET", path_of(to_login), cookies=jar)
    form = {
        "username": args.username,
        "password": args.password,
        "csrf_token": form_field(page.text(), "csrf_token") or "",
        "return_to": form_field(page.text(), "return_to") or authorize,
    }
    posted = request(a, "POST", "/login", body=form, cookies=jar)
    check(posted.status == 303, "password login on A", f"{posted.status} {posted.text()[:200]}")
    back = request(a, "GET", path_of(posted.header("Location") or authorize), cookies=jar)
    redirect = urllib.parse.urlsplit(back.header("Location") or "")
    query = dict(urllib.parse.parse_qsl(redirect.query))
    code = query.get("code")
    check(
        back.status in (302, 303) and code and query.get("state") == state,
        "A issues an authorization code",
        f"{back.status} {back.header('Location')} {back.text()[:200]}",
    )
    basic = "Basic " + base64.b64encode(
        f"{urllib.parse.quote(args.client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}".encode()
    ).decode()
    redeem = {
        "grant_type": "authorization_code",
        "code": code or "",
        "redirect_uri": args.redirect_uri,
        "code_verifier": verifier,
    }
    token = request(b, "POST", "/token", headers={"Authorization": basic}, body=redeem)
    ok = check(token.status == 200 and "id_token" in token.json(), "B redeems the code A issued",
               f"{token.status} {token.text()[:300]}")
    if ok:
        tokens = token.json()
        kid = jwt_header(tokens["id_token"]).get("kid")
        check(kid in jwks_kids(a) and kid in jwks_kids(b), "both instances publish the ID token's key", kid)
        info = request(lb, "GET", "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
        check(info.status == 200 and info.json().get("sub"), "userinfo through nginx accepts B's access token",
              f"{info.status} {info.text()[:200]}")
    replay = request(a, "POST", "/token", headers={"Authorization": basic}, body=redeem)
    check(
        replay.status == 400 and b"invalid_grant" in replay.body,
        "the same code replayed at A is refused (invalid_grant)",
        f"{replay.status} {replay.text()[:200]}",
    )

    # --- throttling sees the client's address through nginx ------------
    client_ip, other_ip = "203.0.113.7", "203.0.113.8"
    for _ in range(args.max_failures):
        login(lb, args.throttle_username, "wrong password", {}, forwarded_for=client_ip)
    blocked = login(lb, args.throttle_username, args.password, {}, forwarded_for=client_ip)
    check(blocked.status == 429, f"after {args.max_failures} failures from {client_ip} (X-Forwarded-For) it is blocked",
          str(blocked.status))
    other = login(lb, args.throttle_username, args.password, {}, forwarded_for=other_ip)
    check(other.status == 303, f"{other_ip} through the same nginx is not blocked (throttling counts the client)",
          str(other.status))

    # --- key rotation seen by both -------------------------------------
    before = jwks_kids(a)
    rotated = subprocess.run([args.wxfed, "--json", "keys", "rotate"], capture_output=True, text=True)
    if not check(rotated.returncode == 0, "wxfed keys rotate", rotated.stderr.strip()[-300:]):
        return
    new_kids = set(json.loads(rotated.stdout)["rotated_to"])
    check(new_kids and not (new_kids & before), "rotation made new keys", str(new_kids))
    started = time.monotonic()
    deadline = started + args.reload_secs * 3 + 10
    seen = {}
    while time.monotonic() < deadline and len(seen) < 2:
        for name, base in (("A", a), ("B", b)):
            if name not in seen and new_kids <= jwks_kids(base):
                seen[name] = time.monotonic() - started
        time.sleep(0.5)
    for name in ("A", "B"):
        check(name in seen, f"instance {name} publishes the rotated keys"
              + (f" (after {seen[name]:.1f}s; reload every {args.reload_secs}s)" if name in seen else ""),
              f"not within {args.reload_secs * 3 + 10}s")
    check(new_kids <= jwks_kids(lb), "the JWKS through nginx has the rotated keys")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # a broken step is a failure, never a pass
        check(False, "smoke test ran to the end", repr(error))
    sys.exit(1 if failures else 0)
