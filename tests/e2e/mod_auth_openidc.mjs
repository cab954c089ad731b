// The browser half of the end-to-end test (run by run.sh, which starts wxfed
// and Apache + mod_auth_openidc first). Five checks, a–e:
//   a. /protected/ on the RP lands on wxfed's /login (via /authorize with PKCE S256)
//   b. after signing in, no consent page for the first-party client (Allow is clicked if one appears)
//   c. the browser ends on the protected page (200 from Apache) and the RP's session carries the claims
//   d. RP logout goes through wxfed's end_session_endpoint and ends on loggedout.html
//   e. /protected/ again shows wxfed's login page: both sessions are gone
// Writes "passed failed" to $E2E_RESULTS; prints each check and, on failure,
// the navigation trail and a screenshot path.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set (run this through run.sh)`);
    return v;
};
const RP = env('RP_URL').replace(/\/$/, '');
const ISSUER = env('OP_ISSUER').replace(/\/$/, '');
const USERNAME = env('E2E_USERNAME');
const PASSWORD = env('E2E_PASSWORD');
const ARTIFACTS = env('E2E_ARTIFACTS');
const RESULTS = process.env.E2E_RESULTS;
const EMAIL = process.env.E2E_EMAIL ?? 'alice@example.com';
const TIMEOUT = 15_000;

const OP_ORIGIN = new URL(ISSUER).origin;
const PROTECTED = `${RP}/protected/`;
const LOGGED_OUT = `${RP}/loggedout.html`;
const INFO = `${RP}/protected/redirect_uri?info=json`;
const LOGOUT = `${RP}/protected/redirect_uri?logout=${encodeURIComponent(LOGGED_OUT)}`;

const CHECKS = ['a', 'b', 'c', 'd', 'e'];
const results = new Map(); // id -> {ok, title, detail}
const notes = [];
let page;
let trail = []; // main-frame navigations since the current check began (for failure reports)
let allNavs = []; // full URLs of main-frame navigations (for parameter checks)

class CheckFailed extends Error {}
const fail = (message) => {
    throw new CheckFailed(message);
};
const expect = (cond, message) => {
    if (!cond) fail(message);
};

const short = (u, n = 240) => (u.length > n ? `${u.slice(0, n)}…` : u);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isLogin = (u) => {
    try {
        const url = new URL(u);
        return url.origin === OP_ORIGIN && url.pathname === '/login';
    } catch {
        return false;
    }
};

async function check(id, title, fn) {
    trail = [];
    try {
        const detail = await fn();
        results.set(id, { ok: true, title });
        console.log(`ok   ${id}: ${title}${detail ? ` — ${detail}` : ''}`);
        return true;
    } catch (e) {
        results.set(id, { ok: false, title });
        const why = e instanceof CheckFailed ? e.message : `${e.name}: ${e.message}`;
        console.log(`FAIL ${id}: ${title}\n     ${why.split('\n').join('\n     ')}`);
        if (page) {
            console.log(`     page now: ${short(page.url())}`);
            if (trail.length) {
                console.log('     navigations:');
                for (const t of trail) console.log(`       ${t}`);
            }
            const shot = path.join(ARTIFACTS, `e2e-${id}.png`);
            try {
                await page.screenshot({ path: shot, fullPage: true, timeout: 5000 });
                writeFileSync(path.join(ARTIFACTS, `e2e-${id}.html`), await page.content());
                console.log(`     screenshot: ${shot}`);
            } catch (err) {
                console.log(`     (no screenshot: ${err.message.split('\n')[0]})`);
            }
        }
        return false;
    }
}

const skip = (id, title, why) => {
    results.set(id, { ok: false, title });
    console.log(`FAIL ${id}: ${title}\n     not run: ${why}`);
};

/** Polls `probe` until it returns a truthy value. Errors from a page in mid-navigation are retried;
 *  a CheckFailed thrown by the probe ends the wait at once. */
async function until(probe, what, timeout = TIMEOUT) {
    const end = Date.now() + timeout;
    let last;
    while (Date.now() < end) {
        try {
            const v = await probe();
            if (v) return v;
        } catch (e) {
            if (e instanceof CheckFailed) throw e; // a definite answer, not a page in flux
            last = e;
        }
        await sleep(150);
    }
    fail(`timed out after ${timeout / 1000}s waiting for ${what}${last ? ` (last error: ${last.message.split('\n')[0]})` : ''}`);
}

/** The login form's parts, or null when the page is not wxfed's login form. */
async function loginForm() {
    if (!isLogin(page.url())) return null;
    const user = page.locator('form input[name="username"]');
    const pass = page.locator('form input[name="password"]');
    const submit = page.locator('form button[type="submit"], form input[type="submit"]');
    if ((await user.count()) !== 1 || (await pass.count()) !== 1 || (await submit.count()) < 1) return null;
    return { user, pass, submit: submit.first() };
}

/** The status Apache (or wxfed) gave the page now shown, from the last main-frame response. */
let lastDocStatus = null;

async function discovery() {
    const res = await fetch(`${ISSUER}/.well-known/openid-configuration`);
    if (!res.ok) throw new Error(`discovery: HTTP ${res.status}`);
    return res.json();
}

async function main() {
    let meta = null;
    try {
        meta = await discovery();
    } catch (e) {
        notes.push(`wxfed discovery not available (${e.message}); endpoint checks are skipped`);
    }
    const authzEndpoint = meta?.authorization_endpoint;
    const endSession = meta?.end_session_endpoint;

    const browser = await chromium.launch({
        executablePath: process.env.E2E_CHROMIUM ?? '/usr/bin/chromium',
        headless: true,
        args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
        ],
    });
    try {
        const context = await browser.newContext();
        context.setDefaultTimeout(TIMEOUT);
        context.setDefaultNavigationTimeout(TIMEOUT);
        page = await context.newPage();
        page.on('request', (r) => {
            if (r.isNavigationRequest() && r.frame() === page.mainFrame()) trail.push(`→ ${r.method()} ${short(r.url())}`);
        });
        page.on('response', (r) => {
            const req = r.request();
            if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
                const loc = r.headers()['location'];
                trail.push(`← ${r.status()} ${short(r.url(), 120)}${loc ? ` Location: ${short(loc)}` : ''}`);
                if (r.status() < 300 || r.status() >= 400) lastDocStatus = { url: r.url(), status: r.status() };
            }
        });
        const requestsTo = (endpoint) =>
            allNavs.filter((u) => {
                try {
                    const url = new URL(u);
                    return `${url.origin}${url.pathname}` === endpoint;
                } catch {
                    return false;
                }
            });
        page.on('request', (r) => {
            if (r.isNavigationRequest() && r.frame() === page.mainFrame()) allNavs.push(r.url());
        });

        // a. protected page -> wxfed login form; sign in.
        const a = await check('a', 'GET /protected/ on the RP lands on the wxfed login form', async () => {
            allNavs = [];
            await page.goto(PROTECTED).catch((e) => notes.push(`goto /protected/: ${e.message.split('\n')[0]}`));
            const form = await until(async () => {
                // The RP answering with an error (e.g. it could not fetch discovery) will not change by waiting.
                if (new URL(page.url()).origin === new URL(RP).origin && lastDocStatus?.url === page.url() && lastDocStatus.status >= 400)
                    fail(`the RP answered HTTP ${lastDocStatus.status} at ${short(page.url())} instead of redirecting to wxfed`);
                return loginForm();
            }, `wxfed's login form at ${OP_ORIGIN}/login`).catch(async (e) => {
                const body = (await page.locator('body').innerText().catch(() => '')).trim().slice(0, 400);
                fail(`${e.message}\n(HTTP ${lastDocStatus?.status ?? '?'} at ${short(page.url())}; page text: ${JSON.stringify(body)})`);
            });
            let detail = 'login form shown';
            if (authzEndpoint) {
                const authz = requestsTo(authzEndpoint);
                expect(authz.length > 0, `the browser never visited the authorization_endpoint ${authzEndpoint}`);
                const q = new URL(authz[0]).searchParams;
                expect(q.get('response_type') === 'code', `authorize response_type=${q.get('response_type')}`);
                expect(q.get('code_challenge_method') === 'S256', `authorize code_challenge_method=${q.get('code_challenge_method')}`);
                expect(q.get('code_challenge'), 'authorize request without code_challenge');
                expect((q.get('scope') ?? '').split(' ').includes('openid'), `authorize scope=${q.get('scope')}`);
                detail = `via ${new URL(authzEndpoint).pathname} (code, PKCE S256, scope "${q.get('scope')}")`;
            }
            await form.user.fill(USERNAME);
            await form.pass.fill(PASSWORD);
            await form.submit.click();
            return detail;
        });
        if (!a) {
            for (const [id, t] of [
                ['b', 'consent step'],
                ['c', 'protected page and claims'],
                ['d', 'RP-initiated logout'],
                ['e', 'both sessions ended'],
            ])
                skip(id, t, 'check a failed');
            return;
        }

        // b. consent (expected to be skipped for a first-party client).
        const b = await check('b', 'no consent page for the first-party client (Allow clicked if shown)', async () => {
            const allow = page.locator('form button[name="decision"][value="allow"]');
            const where = await until(async () => {
                const u = new URL(page.url());
                if (u.origin === new URL(RP).origin && !u.pathname.startsWith('/protected/redirect_uri')) return 'rp';
                if (u.origin === OP_ORIGIN && (await allow.count()) > 0) return 'consent';
                if (isLogin(u.href)) {
                    const err = page.locator('[role="alert"], .error');
                    if ((await err.count()) > 0) fail(`wxfed rejected the login: ${(await err.first().innerText()).trim()}`);
                }
                return null;
            }, 'the RP (or a consent page) after signing in');
            if (where === 'consent') {
                await allow.first().click();
                await until(() => new URL(page.url()).origin === new URL(RP).origin, 'the RP after clicking Allow');
                fail('wxfed showed a consent page for a --first-party client (clicked Allow; the flow continues)');
            }
            return 'went straight back to the RP';
        });

        // c. the protected page, then the claims the RP holds.
        const c = await check('c', 'ends on the protected page (200) with the expected claims', async () => {
            await until(
                () => page.url() === PROTECTED && lastDocStatus?.url === PROTECTED,
                `the protected page ${PROTECTED}`,
            ).catch(async (e) => {
                const body = (await page.locator('body').innerText().catch(() => '')).trim().slice(0, 400);
                fail(`${e.message}\n(HTTP ${lastDocStatus?.status ?? '?'} at ${short(page.url())}; page text: ${JSON.stringify(body)})`);
            });
            expect(lastDocStatus.status === 200, `protected page answered HTTP ${lastDocStatus.status}`);
            const marker = await page.locator('#e2e-marker').innerText();
            expect(marker.includes('Protected'), `unexpected protected page content: ${marker}`);

            const res = await page.request.get(INFO, { maxRedirects: 0 });
            const text = await res.text();
            expect(res.status() === 200, `${INFO} answered HTTP ${res.status()}: ${short(text, 400)}`);
            let info;
            try {
                info = JSON.parse(text);
            } catch {
                fail(`${INFO} is not JSON: ${short(text, 400)}`);
            }
            const idt = info.id_token ?? {};
            const ui = info.userinfo ?? {};
            const claim = (k) => idt[k] ?? ui[k];
            const problems = [];
            if (!idt.sub) problems.push('id_token has no sub');
            if (ui.sub !== undefined && ui.sub !== idt.sub) problems.push(`userinfo sub ${ui.sub} != id_token sub ${idt.sub}`);
            if (idt.iss !== ISSUER) problems.push(`id_token iss ${JSON.stringify(idt.iss)} != ${ISSUER}`);
            const pu = claim('preferred_username');
            const em = claim('email');
            if (pu !== undefined && pu !== USERNAME) problems.push(`preferred_username ${JSON.stringify(pu)} != ${USERNAME}`);
            if (em !== undefined && em !== EMAIL) problems.push(`email ${JSON.stringify(em)} != ${EMAIL}`);
            if (pu === undefined && em === undefined) problems.push('neither preferred_username nor email among the claims');
            if (problems.length) fail(`claims: ${problems.join('; ')}\n${JSON.stringify(info, null, 1).slice(0, 1500)}`);
            const seen = ['sub', 'iss', 'preferred_username', 'name', 'email', 'email_verified']
                .filter((k) => claim(k) !== undefined)
                .map((k) => `${k}=${JSON.stringify(claim(k))}`);
            return `${seen.join(' ')} (userinfo: ${Object.keys(ui).length ? 'yes' : 'none'})`;
        });

        // d. RP-initiated logout through wxfed's end_session_endpoint.
        const d = await check('d', 'logout via the RP goes through wxfed end_session and ends on loggedout.html', async () => {
            expect(c || b, 'no RP session to log out of (b and c failed)');
            allNavs = [];
            let confirmed = false;
            await page.goto(LOGOUT).catch((e) => notes.push(`goto logout: ${e.message.split('\n')[0]}`));
            await until(async () => {
                if (page.url() === LOGGED_OUT && lastDocStatus?.url === LOGGED_OUT) return true;
                // An OP may ask before ending its own session (RP-Initiated Logout 1.0 §2).
                const u = new URL(page.url());
                if (!confirmed && u.origin === OP_ORIGIN && !isLogin(u.href)) {
                    const btn = page.locator('form[method="post" i] button[type="submit"], form[method="post" i] input[type="submit"]');
                    if ((await btn.count()) > 0) {
                        confirmed = true;
                        notes.push(`wxfed asked to confirm the logout at ${u.pathname}; clicked "${(await btn.first().innerText().catch(() => '')).trim()}"`);
                        await btn.first().click();
                    }
                }
                return false;
            }, `${LOGGED_OUT}`);
            expect(lastDocStatus.status === 200, `loggedout.html answered HTTP ${lastDocStatus.status}`);
            if (endSession) {
                const es = requestsTo(endSession);
                expect(es.length > 0, `the browser never visited the end_session_endpoint ${endSession}`);
                const q = new URL(es[0]).searchParams;
                expect(q.get('id_token_hint'), 'end_session request without id_token_hint');
                expect(
                    q.get('post_logout_redirect_uri') === LOGGED_OUT,
                    `end_session post_logout_redirect_uri=${q.get('post_logout_redirect_uri')}`,
                );
                return `via ${new URL(endSession).pathname} with id_token_hint and post_logout_redirect_uri${confirmed ? ' (after a confirmation page)' : ''}`;
            }
            return 'discovery lists no end_session_endpoint';
        });

        // e. both sessions are gone: the RP sends us to wxfed, and wxfed asks for a password.
        await check('e', 'GET /protected/ again shows the wxfed login form (both sessions ended)', async () => {
            expect(d, 'logout (d) failed, so the sessions may still be alive');
            allNavs = [];
            await page.goto(PROTECTED).catch((e) => notes.push(`goto /protected/: ${e.message.split('\n')[0]}`));
            await until(async () => {
                if (await loginForm()) return true;
                if (page.url() === PROTECTED && lastDocStatus?.url === PROTECTED && lastDocStatus.status === 200) {
                    const viaOp = allNavs.some((u) => new URL(u).origin === OP_ORIGIN);
                    fail(
                        viaOp
                            ? 'wxfed signed the user in again without a password: its session survived the logout'
                            : 'mod_auth_openidc served the protected page without a login: its session survived the logout',
                    );
                }
                return false;
            }, "wxfed's login form");
            return 'login form shown';
        });
    } finally {
        await browser.close().catch(() => {});
    }
}

let crashed = null;
try {
    await main();
} catch (e) {
    crashed = e;
    console.log(`e2e script error: ${e.stack ?? e}`);
}
for (const id of CHECKS) if (!results.has(id)) skip(id, `check ${id}`, crashed ? 'the script crashed' : 'not reached');
for (const n of notes) console.log(`note: ${n}`);
const passed = [...results.values()].filter((r) => r.ok).length;
const failedCount = results.size - passed;
if (RESULTS) writeFileSync(RESULTS, `${passed} ${failedCount}\n`);
process.exitCode = failedCount > 0 || crashed ? 1 : 0;
