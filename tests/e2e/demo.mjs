// `wxfed demo` in Chromium (issue 12 §1), run by ./demo.sh against the real
// binary: every button of /demo, each to its success page, with a
// screenshot of every step in $SHOTS.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set (run this through tests/e2e/demo.sh)`);
    return v;
};
const BASE = env('BASE_URL').replace(/\/$/, '');
const SHOTS = env('SHOTS');
const PASSWORDS = { demo: env('DEMO_PASSWORD'), admin: env('ADMIN_PASSWORD'), auditor: env('AUDITOR_PASSWORD') };

class CheckFailed extends Error {}
const expect = (cond, message) => {
    if (!cond) throw new CheckFailed(message);
};

const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
});
let step = 0;
let page;
const shot = async (label) => {
    step += 1;
    const file = path.join(SHOTS, `${String(step).padStart(2, '0')}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
};
/// A fresh browser profile (a person with no wxfed session yet).
const fresh = async () => {
    if (page) await page.context().close();
    const context = await browser.newContext({
        locale: 'en', viewport: { width: 1280, height: 900 }, acceptDownloads: true,
        extraHTTPHeaders: { 'Accept-Language': 'en' },
    });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
};
const click = async (selector) => {
    await Promise.all([page.waitForLoadState('load'), page.click(selector)]);
    await page.waitForLoadState('load');
};
const onDemo = async () => {
    await page.goto(`${BASE}/demo`);
    expect(await page.locator('[data-testid="demo-accounts"]').count() === 1, 'the /demo page');
};
/// On wxfed's login page: sign in.
const logIn = async (username) => {
    await page.waitForSelector('input[name="password"]');
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', PASSWORDS[username]);
    await click('form[action="/login"] button[type="submit"]');
};
const rpOk = async (label, wantAmr) => {
    await page.waitForSelector('[data-testid="rp-ok"]');
    const claims = JSON.parse(await page.textContent('[data-testid="rp-claims"]'));
    const userinfo = JSON.parse(await page.textContent('[data-testid="rp-userinfo"]'));
    expect(claims.amr && claims.amr[0] === wantAmr, `${label}: amr ${JSON.stringify(claims.amr)}`);
    expect(userinfo.preferred_username === 'demo' && userinfo.sub === claims.sub, `${label}: userinfo ${JSON.stringify(userinfo)}`);
    await shot(`${label}-rp-logged-in`);
};
/// The WeChat button on wxfed's login page, then the simulator's page.
const wechat = async (label, simulatorPath) => {
    await page.waitForSelector('a.button.wechat');
    await shot(`${label}-wxfed-login`);
    await click('a.button.wechat');
    expect(new URL(page.url()).pathname === simulatorPath, `${label}: simulator page ${page.url()}`);
    await shot(`${label}-wechat-confirm`);
    await click('button[data-user="wx-demo"]');
};

let ok = false;
try {
    await fresh();
    await onDemo();
    await shot('demo');

    // Logging in to the sample RP: password, WeChat QR, official account.
    await click('[data-testid="flow-password"]');
    expect(await page.inputValue('input[name="username"]') === 'demo', 'login_hint fills in the username');
    await shot('password-login-page');
    await logIn('demo');
    await rpOk('password', 'pwd');

    await onDemo();
    await click('[data-testid="flow-wechat-qr"]');
    await wechat('wechat-qr', '/connect/qrconnect');
    await rpOk('wechat-qr', 'wechat');

    await onDemo();
    await click('[data-testid="flow-official"]');
    await wechat('official', '/connect/oauth2/authorize');
    await rpOk('official', 'wechat');

    // What apps and servers do, performed by the demo on the press of a button.
    for (const flow of ['mini-program', 'phone', 'finclip-1', 'finclip-2', 'finclip-3']) {
        await onDemo();
        await click(`[data-testid="flow-${flow}"]`);
        const error = await page.locator('[data-testid="flow-error"]').count() ? await page.textContent('[data-testid="flow-error"]') : '';
        expect(await page.locator('[data-testid="flow-ok"]').count() === 1, `${flow}: ${error}`);
        await shot(`flow-${flow}`);
    }
    expect((await page.textContent('[data-testid="step-3"]')).includes('"sub"'), 'finclip-3 shows the new ID token');

    // Admin console: link Carol's WeChat identity to carol; merge carol-old into carol.
    await fresh();
    await page.goto(`${BASE}/login?return_to=${encodeURIComponent('/demo')}`);
    await logIn('admin');
    await onDemo();
    await click('[data-testid="flow-link"]');
    await page.waitForSelector('[data-testid="link-form"]');
    await shot('admin-identity-unlinked');
    await page.fill('[data-testid="link-username"]', 'carol');
    await page.fill('[data-testid="link-reason"]', 'demo: confirmed by phone');
    await click('[data-testid="link"]');
    expect((await page.textContent('[data-testid="linked-account"]')).trim() === 'carol', 'linked to carol');
    await shot('admin-identity-linked');

    await onDemo();
    await click('[data-testid="flow-merge"]');
    await page.waitForSelector('[data-testid="merge-plan"]');
    for (const field of ['phone', 'email', 'display_name']) {
        if (await page.$(`[data-testid="prefer-${field}-into"]`)) await page.check(`[data-testid="prefer-${field}-into"]`);
    }
    await page.fill('[data-testid="merge-reason"]', 'demo: the same person');
    await shot('admin-merge-preview');
    await click('[data-testid="merge-submit"]');
    expect((await page.textContent('[data-testid="account-username"]')).includes('carol'), `after merge: ${page.url()}`);
    await shot('admin-merged');

    // Auditor: the console's JSONL export, and the demo's download + verify.
    await fresh();
    await page.goto(`${BASE}/login?return_to=${encodeURIComponent('/demo')}`);
    await logIn('auditor');
    await onDemo();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="flow-audit-export"]')]);
    const file = path.join(SHOTS, 'audit-export.jsonl');
    await download.saveAs(file);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.length > 3 && lines.some((l) => l.includes('wechat_identity.linked')) && lines.some((l) => l.includes('user.merged')),
        `the export has the console's actions (${lines.length} lines)`);
    fs.unlinkSync(file);
    await click('[data-testid="flow-audit-verify"]');
    expect(await page.locator('[data-testid="flow-ok"]').count() === 1, 'the export verifies');
    await shot('auditor-export-verified');
    ok = true;
    console.log('ok every button of /demo reached its success page');
} catch (e) {
    console.log(`FAIL: ${e instanceof CheckFailed ? e.message : e.stack}`);
    if (page) {
        console.log(`page now: ${page.url()}`);
        try { console.log(`screenshot: ${await shot('failure')}`); } catch {}
    }
} finally {
    await browser.close();
}
process.exit(ok ? 0 : 1);
