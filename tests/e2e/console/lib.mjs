// Shared by the console browser scripts (run by ../console.sh): a Chromium
// page in the language under test, sign-in, screenshots, the CLI, checks.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set (run this through tests/e2e/console.sh)`);
    return v;
};

export const BASE = env('BASE_URL').replace(/\/$/, '');
export const LANG = env('CONSOLE_LANG');
export const PASSWORD = env('PASSWORD');
export const ADMIN = env('ADMIN_USER');
export const AUDITOR = env('AUDITOR_USER');
export const WORK = env('WORK');
const SHOTS = env('SHOTS');

/// Fails the script with a message (and a screenshot of where it stood).
export class CheckFailed extends Error {}
export const expect = (cond, message) => {
    if (!cond) throw new CheckFailed(message);
};

/// Runs the wxfed CLI with the server's settings; returns stdout.
export const cli = (args, input) =>
    execFileSync(env('CONSOLE_BIN'), args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

/// Runs `body({ page, shot, signIn, pageLang, confirmIfAsked })` in a fresh browser, exits 0/1.
export async function run(name, body) {
    const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: [
            '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--no-first-run',
        ],
    });
    const context = await browser.newContext({
        locale: LANG,
        viewport: { width: 1280, height: 900 },
        extraHTTPHeaders: { 'Accept-Language': LANG === 'en' ? 'en' : 'zh-CN,zh;q=0.9' },
    });
    // The language switch's cookie, as a person who picked the language would have.
    await context.addCookies([{ name: 'wxfed_lang', value: LANG, url: BASE }]);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    let step = 0;
    const shot = async (label) => {
        step += 1;
        const file = path.join(SHOTS, `${name}-${String(step).padStart(2, '0')}-${label}.png`);
        await page.screenshot({ path: file, fullPage: true });
        return file;
    };
    const signIn = async (username) => {
        await page.goto(`${BASE}/login?return_to=${encodeURIComponent('/admin')}`);
        await page.fill('input[name="username"]', username);
        await page.fill('input[name="password"]', PASSWORD);
        await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
    };
    /// A sensitive action may first ask for the password again (issue 8
    /// §1): answer it; the continue page then re-posts the action itself.
    const confirmIfAsked = async (label = 'reauth') => {
        if ((await page.locator('[data-testid="reauth-form"]').count()) === 0) return false;
        await shot(label);
        await page.fill('[data-testid="reauth-password"]', PASSWORD);
        await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/admin/reauth')), page.click('[data-testid="reauth-submit"]')]);
        await page.waitForLoadState('load');
        return true;
    };
    /// The text of the page's <html lang>, to check the language really is LANG.
    const pageLang = () => page.getAttribute('html', 'lang');
    let ok = false;
    try {
        await body({ page, shot, signIn, pageLang, confirmIfAsked });
        ok = true;
        console.log(`ok ${name} (${LANG})`);
    } catch (e) {
        console.log(`FAIL ${name} (${LANG}): ${e instanceof CheckFailed ? e.message : e.stack}`);
        console.log(`page now: ${page.url()}`);
        try {
            console.log(`screenshot: ${await shot('failure')}`);
        } catch {}
    } finally {
        await browser.close();
    }
    process.exit(ok ? 0 : 1);
}
