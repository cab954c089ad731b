"""wechatpy, a real WeChat backend SDK, against wxfed's jscode2session facade.

Run by tests/sdk/run.sh, which starts the WeChat simulator and three wxfed
instances (unlinked policies deny / bind / auto-phone on one database),
registers apps, accounts and clients, and passes everything in SDK_* variables.

How wechatpy is pointed at wxfed (read from wechatpy 1.8.18's source; 2.0.0a26
is the same):
  * `WeChatClient(appid, secret).wxa.code_to_session(js_code)` calls
    `self._get("sns/jscode2session", params=…)`; `BaseWeChatAPI._get` sends
    `api_base_url=self.API_BASE_URL` when the API object has one, and
    `WeChatWxa.API_BASE_URL` is the class attribute "https://api.weixin.qq.com/".
    `BaseWeChatClient.__new__` gives every client its own `WeChatWxa` instance,
    so `client.wxa.API_BASE_URL = "http://127.0.0.1:PORT/"` moves only that
    client's `wxa` calls; the base must end with "/" (it is concatenated).
  * Plain http needs nothing: the base is used as given.
  * `BaseWeChatClient._request` adds `access_token=<the app's token>` to every
    call's query, jscode2session included (WeChat ignores it there). A token not
    given to the constructor is fetched first from a hard-coded
    https://api.weixin.qq.com/cgi-bin/token. So the clients here fetch theirs from
    the simulator (`fetch_access_token` overridden: the simulator is "WeChat"),
    and clients with deliberately bad credentials get a fixed token, so that the
    error comes from jscode2session rather than from the token call.
  * Errors: any `errcode` != 0 in an HTTP-200 body raises
    `WeChatClientException(errcode, errmsg)`; an HTTP error status raises it with
    errcode None (so errcode None here means wxfed did not answer WeChat-style).

The checks print one line each; the counts go to $SDK_RESULTS as "passed failed".
Every HTTP exchange (secrets redacted) is appended to $SDK_HTTP_LOG; a failing
check prints its own exchanges.
"""

import base64
import hashlib
import html
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

SIM = os.environ["SDK_SIM"]
DENY = os.environ["SDK_DENY"]  # the main wxfed instance (unlinked policy deny)
BIND = os.environ["SDK_BIND"]
PHONE = os.environ["SDK_PHONE"]
TMP = os.environ["SDK_TMP"]
WXFED_BIN = os.environ["SDK_WXFED_BIN"]
PASSWORD = os.environ["SDK_PASSWORD"]
RESULTS = os.environ["SDK_RESULTS"]
HTTP_LOG = os.environ.get("SDK_HTTP_LOG", os.path.join(TMP, "http.log"))

TX = "urn:ietf:params:oauth:grant-type:token-exchange"
JSCODE = "urn:wxfed:params:oauth:token-type:wechat-jscode"
OAUTH_CODE = "urn:wxfed:params:oauth:token-type:wechat-oauth-code"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
HOST_REDIRECT = "com.acme.host:/oauth/callback"

APPS = json.load(open(os.path.join(TMP, "apps.json")))
MP, APP, AUTH, OTHER = (APPS[k] for k in ("mp", "app", "auth", "other"))


def client_file(key):
    path = os.path.join(TMP, f"client-{key}.json")
    return json.load(open(path)) if os.path.exists(path) else None


# --- the HTTP transcript ------------------------------------------------------

SECRET_PARAMS = {"secret", "client_secret", "password", "access_token", "subject_token", "code_verifier"}
transcript = []  # (title, text) of every exchange, in order


def redact_query(url):
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    shown = [(k, redact_value(k, v)) for k, v in query]
    encoded = "&".join(f"{k}={urllib.parse.quote(v, safe=':/<>…')}" for k, v in shown)
    return urllib.parse.urlunsplit(parts._replace(query=encoded))


def redact_value(name, value):
    if name in ("secret", "client_secret", "password"):
        return "<redacted>"
    if name in SECRET_PARAMS and len(value) > 16:
        return value[:10] + "…"
    return value


def redact_body(body, content_type):
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if "json" in (content_type or "") or body.lstrip().startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return body[:2000]
        if isinstance(data, dict):
            for k in list(data):
                if k in ("access_token", "refresh_token", "id_token") and isinstance(data[k], str):
                    data[k] = data[k][:16] + "…"
                if k in ("client_secret", "password"):
                    data[k] = "<redacted>"
        return json.dumps(data, ensure_ascii=False)
    if "x-www-form-urlencoded" in (content_type or ""):
        pairs = urllib.parse.parse_qsl(body, keep_blank_values=True)
        return urllib.parse.urlencode([(k, redact_value(k, v)) for k, v in pairs], safe=":/")
    return body[:2000]


def record(response, *args, **kwargs):
    """A requests response hook: appends the exchange to the transcript."""
    req = response.request
    headers = {k: v for k, v in req.headers.items() if k.lower() in ("authorization", "content-type")}
    if "Authorization" in headers:
        scheme, _, value = headers["Authorization"].partition(" ")
        headers["Authorization"] = f"{scheme} {value[:12]}…"
    lines = [f"{req.method} {redact_query(req.url)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if req.body:
        lines.append(redact_body(req.body, req.headers.get("Content-Type")))
    lines.append(f"-> {response.status_code} {response.headers.get('Content-Type', '')}")
    location = response.headers.get("Location")
    if location:
        lines.append(f"Location: {redact_query(location)}")
    body = redact_body(response.content, response.headers.get("Content-Type"))
    if body and not body.lstrip().startswith("<"):
        lines.append(body)
    text = "\n".join(lines)
    transcript.append(text)
    with open(HTTP_LOG, "a", encoding="utf-8") as out:
        out.write(text + "\n\n")
    return response


def last_call(path):
    """The transcript's latest exchange on `path`."""
    for text in reversed(transcript):
        if path in text.split("\n", 1)[0]:
            return text
    return ""


def brief(response):
    """A response body shortened for a message: an HTML page by its title."""
    if response is None:
        return ""
    text = response.text
    title = re.search(r"<title>([^<]*)</title>", text)
    return f"(HTML page: {title.group(1)})" if title else text[:300]


def session():
    s = requests.Session()
    s.hooks["response"].append(record)
    return s


http = session()


# --- wechatpy clients -----------------------------------------------------------


class MiniProgramBackend(WeChatClient):
    """A mini-program backend's wechatpy client whose jscode2session goes to
    `code_base` (wxfed's facade, or the simulator), everything else to WeChat."""

    def __init__(self, app, code_base, access_token=None, secret=None):
        super().__init__(app["appid"], secret if secret is not None else app["secret"],
                         access_token=access_token, timeout=10)
        self._http.hooks["response"].append(record)
        # The one line an integrator changes (see the module docstring).
        self.wxa.API_BASE_URL = code_base.rstrip("/") + "/"

    def fetch_access_token(self):
        # WeChat's cgi-bin/token, at the simulator (wechatpy hard-codes the real host).
        return self._fetch_access_token(
            url=SIM + "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


FIXED_TOKEN = "86_" + "x" * 40  # for clients whose credentials are wrong on purpose


def facade(app, **kwargs):
    return MiniProgramBackend(app, DENY, **kwargs)


def code2session(app, js_code, base=DENY, **kwargs):
    return MiniProgramBackend(app, base, **kwargs).wxa.code_to_session(js_code)


def wechat_error(fn):
    """Runs fn expecting a WeChatClientException; returns it."""
    try:
        result = fn()
    except WeChatClientException as e:
        return e
    raise AssertionError(f"expected a WeChat error, got success: {result}")


def expect_errcode(fn, errcode, what):
    e = wechat_error(fn)
    if e.errcode is None:
        status = e.response.status_code if e.response is not None else "?"
        body = brief(e.response)
        raise AssertionError(f"{what}: HTTP {status} instead of WeChat's HTTP 200 + errcode {errcode}: {body}")
    assert e.errcode == errcode, f"{what}: errcode {e.errcode} ({e.errmsg}), expected {errcode}"
    return e


# --- the simulator ("WeChat") ---------------------------------------------------


def sim_post(path, body):
    r = http.post(SIM + path, json=body, timeout=10)
    assert r.status_code < 300, f"simulator {path}: {r.status_code} {brief(r)}"
    return r.json()


def jscode(app, user):
    return sim_post("/__sim/codes/jscode", {"appid": app["appid"], "user": user})["code"]


def sendauth_code(app, user):
    return sim_post("/__sim/codes/oauth", {"appid": app["appid"], "user": user})["code"]


def phone_code(app, user):
    return sim_post("/__sim/codes/phone", {"appid": app["appid"], "user": user})["code"]


def identity(user, app):
    r = http.get(SIM + "/__sim/identity", params={"user": user, "appid": app["appid"]}, timeout=10)
    assert r.status_code == 200, f"simulator identity: {r.status_code} {brief(r)}"
    return r.json()


def sim_calls(path):
    return http.get(SIM + "/__sim/calls", timeout=10).json().get(path, 0)


# --- wxfed ----------------------------------------------------------------------


def cli(*args):
    out = subprocess.run([WXFED_BIN, *args, "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"wxfed {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}"
    return json.loads(out.stdout) if out.stdout.strip() else None


def need_client(key):
    c = client_file(key)
    assert c, f"client `{key}` was not registered (see run.sh's warnings)"
    return c


def token_request(base, form, auth=None):
    return http.post(base + "/token", data=form, auth=auth, timeout=15)


def exchange(base, client, subject_token, subject_token_type, **extra):
    form = {"grant_type": TX, "client_id": client["client_id"], "subject_token": subject_token,
            "subject_token_type": subject_token_type}
    form.update({k: v for k, v in extra.items() if v is not None})
    return token_request(base, form)


def expect_tokens(r, what):
    assert r.status_code == 200, f"{what}: HTTP {r.status_code} {brief(r)}"
    body = r.json()
    assert body.get("access_token"), f"{what}: no access_token in {body}"
    assert str(body.get("token_type", "")).lower() == "bearer", f"{what}: token_type {body.get('token_type')}"
    assert body.get("issued_token_type") == ACCESS_TOKEN, \
        f"{what}: issued_token_type {body.get('issued_token_type')!r}, expected {ACCESS_TOKEN}"
    assert "session_key" not in json.dumps(body), f"{what}: the token response mentions session_key: {body}"
    return body


def expect_oauth_error(r, error, what, reason=None):
    assert r.status_code == 400, f"{what}: HTTP {r.status_code} (expected 400 {error}) {brief(r)}"
    body = r.json()
    assert body.get("error") == error, f"{what}: error {body.get('error')!r}, expected {error!r}: {body}"
    if reason is not None:
        assert body.get("reason") == reason, f"{what}: reason {body.get('reason')!r}, expected {reason!r}: {body}"
    return body


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def host_code(token, appid, as_json=False):
    headers = {"Authorization": f"Bearer {token}"}
    if as_json:
        return http.post(DENY + "/api/host/wx-login-code", json={"appid": appid}, headers=headers, timeout=10)
    return http.post(DENY + "/api/host/wx-login-code", data={"appid": appid}, headers=headers, timeout=10)


def expect_host_code(r, what):
    assert r.status_code == 200, f"{what}: HTTP {r.status_code} {brief(r)}"
    body = r.json()
    code = body.get("code", "")
    assert re.fullmatch(r"[0-9A-Za-z]{32}", code), f"{what}: code {code!r} is not 32 characters of [0-9A-Za-z]"
    assert body.get("expires_in") == 300, f"{what}: expires_in {body.get('expires_in')!r}, expected 300"
    return code


def browser_login(client, username):
    """The authorization code flow as a browser would run it (login form, PKCE);
    for an account that never used WeChat."""
    browser = session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": HOST_REDIRECT,
              "scope": "openid profile", "state": state, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    r = browser.get(DENY + "/authorize", params=params, allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303), f"/authorize: {r.status_code} {brief(r)}"
    login = browser.get(urllib.parse.urljoin(DENY, r.headers["Location"]), timeout=10)
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', login.text))
    form = {k: html.unescape(v) for k, v in form.items()}
    form.update(username=username, password=PASSWORD)
    r = browser.post(DENY + "/login", data=form, allow_redirects=False, timeout=15)
    assert r.status_code in (302, 303), f"POST /login: {r.status_code} {brief(r)}"
    r = browser.get(urllib.parse.urljoin(DENY, r.headers["Location"]), allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303), f"/authorize after login: {r.status_code} {brief(r)}"
    redirect = r.headers["Location"]
    assert redirect.startswith(HOST_REDIRECT), f"unexpected redirect {redirect}"
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(redirect).query))
    assert query.get("state") == state and query.get("code"), f"bad redirect {redirect}"
    r = token_request(DENY, {"grant_type": "authorization_code", "code": query["code"],
                             "redirect_uri": HOST_REDIRECT, "client_id": client["client_id"],
                             "code_verifier": verifier})
    assert r.status_code == 200, f"code redemption: {r.status_code} {brief(r)}"
    return r.json()["access_token"]


# --- the checks -------------------------------------------------------------------

ctx = {}  # what earlier checks learnt, for later ones
CHECKS = []


def check(label):
    def register(fn):
        CHECKS.append((label, fn))
        return fn
    return register


def needs(key):
    if key not in ctx:
        raise AssertionError(f"needs {key!r} from an earlier check, which failed")
    return ctx[key]


def assert_session_key(body, what):
    key = body.get("session_key")
    assert isinstance(key, str) and key, f"{what}: no session_key in {body}"
    assert len(base64.b64decode(key)) == 16, f"{what}: session_key {key!r} is not 16 bytes of base64"


@check("(0) wechatpy's base-URL override works: code_to_session against the simulator itself")
def sdk_against_simulator():
    code = jscode(MP, "alice")
    body = code2session(MP, code, base=SIM)
    real = identity("alice", MP)
    assert body["openid"] == real["openid"] and body.get("unionid") == real["unionid"], f"{body} vs {real}"
    assert last_call("/sns/jscode2session").startswith(f"GET {SIM}/sns/jscode2session?"), "not sent to the simulator"
    assert_session_key(body, "simulator")


@check("(a) passthrough: a real wx.login code through wxfed's facade gives WeChat's openid, unionid, session_key")
def passthrough():
    code = jscode(MP, "alice")
    before = sim_calls("/sns/jscode2session")
    body = code2session(MP, code)
    assert last_call("/sns/jscode2session").startswith(f"GET {DENY}/sns/jscode2session?"), "not sent to wxfed"
    real = identity("alice", MP)
    assert body.get("openid") == real["openid"], f"openid {body.get('openid')}, WeChat says {real['openid']}"
    assert body.get("unionid") == real["unionid"], f"unionid {body.get('unionid')}, WeChat says {real['unionid']}"
    assert_session_key(body, "passthrough")
    assert set(body) <= {"openid", "session_key", "unionid"}, f"fields beyond WeChat's: {sorted(body)}"
    assert sim_calls("/sns/jscode2session") == before + 1, "wxfed did not ask WeChat exactly once"
    ctx["alice_mp"] = real
    ctx["alice_code_used"] = code


@check("(b1) a reused wx.login code: WeChatClientException 40163")
def reused_code():
    code = needs("alice_code_used")
    expect_errcode(lambda: code2session(MP, code), 40163, "reused code")


@check("(b2) a wrong AppSecret: WeChatClientException 40125")
def wrong_secret():
    code = jscode(MP, "alice")
    expect_errcode(lambda: code2session(MP, code, secret="0" * 32, access_token=FIXED_TOKEN), 40125, "wrong secret")


@check("(b3) an unknown appid: WeChatClientException 40013")
def unknown_appid():
    stranger = {"appid": "wx0000000000000000", "secret": "f" * 32}
    expect_errcode(lambda: code2session(stranger, "0" * 32, access_token=FIXED_TOKEN), 40013, "unknown appid")


@check("(b4) an empty js_code: WeChatClientException 41008")
def empty_code():
    expect_errcode(lambda: code2session(MP, ""), 41008, "empty js_code")


@check("(c0) the host app logs alice in with the WeChat SDK (token exchange of a SendAuth code): "
       "wechat_not_linked before `wxfed link`, tokens after")
def host_login_alice():
    host = need_client("host")
    r = exchange(DENY, host, sendauth_code(APP, "alice"), OAUTH_CODE, scope="openid profile")
    expect_oauth_error(r, "invalid_grant", "unlinked alice", reason="wechat_not_linked")
    cli("link", "alice", "--unionid", identity("alice", APP)["unionid"])
    r = exchange(DENY, host, sendauth_code(APP, "alice"), OAUTH_CODE, scope="openid profile")
    body = expect_tokens(r, "linked alice")
    ctx["alice_host_token"] = body["access_token"]
    ctx["alice_sub"] = claims(body["access_token"])["sub"]


@check("(c1) scheme 1: alice's host code through wechatpy gives her real openid/unionid in the "
       "mini-program, without calling WeChat")
def host_code_alice():
    real = needs("alice_mp")
    code = expect_host_code(host_code(needs("alice_host_token"), MP["appid"]), "host code")
    before = sim_calls("/sns/jscode2session")
    body = code2session(MP, code)
    assert body.get("openid") == real["openid"], f"openid {body.get('openid')}, real one {real['openid']}"
    assert body.get("unionid") == real["unionid"], f"unionid {body.get('unionid')}, real one {real['unionid']}"
    assert_session_key(body, "host code")
    assert sim_calls("/sns/jscode2session") == before, "a host code was sent on to WeChat"
    ctx["alice_host_code_used"] = code


@check("(c2) a host code redeemed twice: WeChatClientException 40163")
def host_code_twice():
    code = needs("alice_host_code_used")
    expect_errcode(lambda: code2session(MP, code), 40163, "second redemption of a host code")


@check("(c3) a host code is bound to its appid: another mini-program's backend gets 40029; "
       "the JSON request form works too")
def host_code_other_appid():
    code = expect_host_code(host_code(needs("alice_host_token"), MP["appid"], as_json=True), "host code (JSON)")
    expect_errcode(lambda: code2session(OTHER, code), 40029, "host code for another appid")


@check("(c4) scheme 1 for an account that never used WeChat (browser login): pseudonymous, "
       "stable, per-app wxf… ids")
def host_code_bob():
    host = need_client("host")
    token = browser_login(host, "bob")
    first = code2session(MP, expect_host_code(host_code(token, MP["appid"]), "bob's host code"))
    assert first.get("openid", "").startswith("wxf"), f"openid {first.get('openid')!r} is not a wxf… pseudonym"
    assert first.get("unionid", "").startswith("wxf"), \
        f"unionid {first.get('unionid')!r} is not a wxf… pseudonym (the app is in an Open Platform)"
    assert_session_key(first, "bob's host code")
    again = code2session(MP, expect_host_code(host_code(token, MP["appid"]), "bob's second host code"))
    assert (again.get("openid"), again.get("unionid")) == (first["openid"], first["unionid"]), \
        f"not stable: {first} then {again}"
    other = code2session(OTHER, expect_host_code(host_code(token, OTHER["appid"]), "bob's host code for OTHER"))
    assert other.get("openid") != first["openid"], "the same pseudonymous openid in two mini-programs"
    ctx["bob_host_token"] = token


@check("(c5) host codes need a host app's token: none → 401, a non-host client's token → refused")
def host_code_refusals():
    r = http.post(DENY + "/api/host/wx-login-code", data={"appid": MP["appid"]}, timeout=10)
    assert r.status_code == 401, f"no token: HTTP {r.status_code} {brief(r)}"
    mini = need_client("mini")
    r = exchange(DENY, mini, needs("alice_host_token"), ACCESS_TOKEN, scope="openid")
    token = expect_tokens(r, "scheme 3 exchange for the refusal check")["access_token"]
    r = host_code(token, MP["appid"])
    assert r.status_code in (401, 403), f"a mini-program client's token got HTTP {r.status_code} {brief(r)}"


@check("(c6) a host code redeemed at once 12 times through 3 wxfed instances: exactly one success, 11 × 40163")
def host_code_race():
    code = expect_host_code(host_code(needs("alice_host_token"), MP["appid"]), "host code")
    bases = [DENY, BIND, PHONE] * 4
    outcomes = [None] * len(bases)

    def redeem(i):
        try:
            outcomes[i] = code2session(MP, code, base=bases[i], access_token=FIXED_TOKEN).get("openid") and "ok"
        except WeChatClientException as e:
            outcomes[i] = e.errcode
        except Exception as e:  # noqa: BLE001
            outcomes[i] = repr(e)

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(len(bases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == sorted(["ok"] + [40163] * (len(bases) - 1), key=str), f"outcomes {outcomes}"


@check("(c7) a revoked host-app token gets no host code (401) and no scheme-3 exchange")
def revoked_host_token():
    host, mini = need_client("host"), need_client("mini")
    r = exchange(DENY, host, sendauth_code(APP, "alice"), OAUTH_CODE, scope="openid")
    token = expect_tokens(r, "a second host token for alice")["access_token"]
    r = http.post(DENY + "/revoke", data={"token": token, "client_id": host["client_id"]}, timeout=10)
    assert r.status_code == 200, f"revocation: HTTP {r.status_code} {brief(r)}"
    r = host_code(token, MP["appid"])
    assert r.status_code == 401, f"host code with a revoked token: HTTP {r.status_code} {brief(r)}"
    r = exchange(DENY, mini, token, ACCESS_TOKEN, scope="openid")
    expect_oauth_error(r, "invalid_grant", "scheme 3 with a revoked host token")


@check("(d1) scheme 2: mp:<appid>:<code> (a code of another acme mini-program) resolves to alice")
def routed_mp():
    real = needs("alice_mp")
    body = code2session(MP, f"mp:{AUTH['appid']}:{jscode(AUTH, 'alice')}")
    assert (body.get("openid"), body.get("unionid")) == (real["openid"], real["unionid"]), f"{body} vs {real}"
    assert_session_key(body, "mp: routed code")


@check("(d2) scheme 2: app:<appid>:<SendAuth code> resolves to alice")
def routed_app():
    real = needs("alice_mp")
    body = code2session(MP, f"app:{APP['appid']}:{sendauth_code(APP, 'alice')}")
    assert (body.get("openid"), body.get("unionid")) == (real["openid"], real["unionid"]), f"{body} vs {real}"
    assert_session_key(body, "app: routed code")


@check("(d3) scheme 2: a routed code from a mini-program in another Open Platform is an error")
def routed_other_platform():
    code = f"mp:{OTHER['appid']}:{jscode(OTHER, 'alice')}"
    e = wechat_error(lambda: code2session(MP, code))
    assert e.errcode not in (None, 0), f"HTTP {e.response.status_code if e.response is not None else '?'} " \
                                       f"instead of a WeChat-style errcode: {e}"
    ctx["routed_other_errcode"] = (e.errcode, e.errmsg)


@check("(e1) scheme 3: the host's access token exchanged for the mini-program client's tokens (same account)")
def scheme3():
    mini = need_client("mini")
    r = exchange(DENY, mini, needs("alice_host_token"), ACCESS_TOKEN, scope="openid profile")
    body = expect_tokens(r, "scheme 3")
    got = claims(body["access_token"])
    assert got.get("sub") == needs("alice_sub"), f"sub {got.get('sub')} vs the host token's {ctx['alice_sub']}"
    assert got.get("client_id") == mini["client_id"], f"client_id {got.get('client_id')} is not the mini-program's"


@check("(e2) scheme 3: a client that does not trust the host app is refused")
def scheme3_untrusted():
    stranger = need_client("stranger")
    r = exchange(DENY, stranger, needs("alice_host_token"), ACCESS_TOKEN, scope="openid")
    assert r.status_code in (400, 401), f"HTTP {r.status_code} {brief(r)}"
    assert r.json().get("error") in ("invalid_grant", "unauthorized_client", "invalid_target", "invalid_request"), r.text


@check("(f1) in WeChat: a wx.login code exchanged for tokens (linked alice), no session_key")
def jscode_exchange():
    mini = need_client("mini")
    r = exchange(DENY, mini, jscode(MP, "alice"), JSCODE, scope="openid wechat")
    body = expect_tokens(r, "wechat-jscode")
    assert claims(body["access_token"]).get("sub") == needs("alice_sub"), "not alice's account"


@check("(f2) in WeChat, policy deny: an unlinked person gets invalid_grant, reason wechat_not_linked")
def jscode_deny():
    r = exchange(DENY, need_client("mini"), jscode(MP, "carol"), JSCODE)
    expect_oauth_error(r, "invalid_grant", "deny", reason="wechat_not_linked")


@check("(f3) policy bind: bind_required, a wrong password refused, then username+password links carol")
def jscode_bind():
    mini = need_client("mini")
    r = exchange(BIND, mini, jscode(MP, "carol"), JSCODE)
    expect_oauth_error(r, "invalid_grant", "bind without password", reason="bind_required")
    r = exchange(BIND, mini, jscode(MP, "carol"), JSCODE, username="carol", password="not the password")
    assert r.status_code == 400, f"wrong password: HTTP {r.status_code} {brief(r)}"
    r = exchange(BIND, mini, jscode(MP, "carol"), JSCODE, username="carol", password=PASSWORD)
    body = expect_tokens(r, "bind with password")
    carol = cli("user", "show", "carol")
    assert claims(body["access_token"]).get("sub") == carol["id"], "not carol's account"
    r = exchange(DENY, mini, jscode(MP, "carol"), JSCODE)
    expect_tokens(r, "carol again, now linked (deny instance)")


@check("(f4) policy auto-phone: a phone_code whose number matches a verified account links dave")
def jscode_auto_phone():
    mini = need_client("mini")
    r = exchange(PHONE, mini, jscode(MP, "dave"), JSCODE, phone_code=phone_code(MP, "dave"), scope="openid phone")
    body = expect_tokens(r, "auto-phone")
    dave = cli("user", "show", "dave")
    assert claims(body["access_token"]).get("sub") == dave["id"], "not dave's account"


@check("(f5) a confidential mini-program backend client: HTTP Basic works, no secret → 401 invalid_client")
def jscode_basic_auth():
    backend = need_client("backend")
    form = {"grant_type": TX, "subject_token": jscode(MP, "alice"), "subject_token_type": JSCODE, "scope": "openid"}
    r = token_request(DENY, form, auth=(backend["client_id"], backend["client_secret"]))
    body = expect_tokens(r, "Basic auth")
    assert claims(body["access_token"]).get("sub") == needs("alice_sub"), "not alice's account"
    form = dict(form, client_id=backend["client_id"], subject_token=jscode(MP, "alice"))
    r = token_request(DENY, form)
    assert r.status_code == 401 and r.json().get("error") == "invalid_client", \
        f"no client secret: HTTP {r.status_code} {brief(r)}"


def main():
    started = time.monotonic()
    passed = failed = 0
    for label, fn in CHECKS:
        mark = len(transcript)
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 — every failure is reported, none stops the run
            failed += 1
            print(f"sdk: FAIL {label} [{(time.monotonic() - t0) * 1000:.0f} ms]")
            if isinstance(e, AssertionError):
                detail = str(e)
            elif isinstance(e, WeChatClientException) and e.errcode is None and e.response is not None:
                detail = f"wechatpy: HTTP {e.response.status_code} instead of a WeChat answer: {brief(e.response)}"
            else:
                detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"       {detail}")
            for text in transcript[mark:][-6:]:
                print("       | " + text.replace("\n", "\n       | "))
        else:
            passed += 1
            print(f"sdk: ok   {label} [{(time.monotonic() - t0) * 1000:.0f} ms]")
    if "routed_other_errcode" in ctx:
        print(f"sdk: note: the other-Open-Platform routed code answered errcode "
              f"{ctx['routed_other_errcode'][0]}: {ctx['routed_other_errcode'][1]}")
    print(f"sdk: checks took {time.monotonic() - started:.1f} s")
    with open(RESULTS, "w") as out:
        out.write(f"{passed} {failed}\n")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
