// The accounts part of the console (issue 8 §3) in a real browser: the
// admin signs in, sees the home page, searches, opens an account, creates
// one, and disables it with a reason; an auditor-only account is refused.
import { ADMIN, AUDITOR, BASE, LANG, expect, run } from './lib.mjs';

const zh = LANG === 'zh-CN';

await run('accounts', async ({ page, shot, signIn, pageLang, confirmIfAsked }) => {
    await signIn(ADMIN);
    expect(new URL(page.url()).pathname === '/admin', `signed in, the admin lands on /admin, not ${page.url()}`);
    expect((await pageLang()) === LANG, `the page is in ${LANG}`);
    const heading = await page.textContent('h1');
    expect(zh ? /[\u4e00-\u9fff]/.test(heading) : /^[\x00-\x7f]+$/.test(heading), `the home heading is in ${LANG}: ${heading}`);
    await shot('home');

    // Search by phone number: exactly the one account.
    await page.click('[data-testid="nav-accounts"]');
    await shot('list');
    await page.fill('[data-testid="search-input"]', '+8613800138002');
    await Promise.all([page.waitForLoadState('load'), page.click('[data-testid="search-submit"]')]);
    const found = await page.locator('[data-testid="account-link"]').allTextContents();
    expect(found.length === 1 && found[0] === 'user2', `searching the phone finds user2 only: ${found}`);
    await shot('search');
    await Promise.all([page.waitForLoadState('load'), page.click('[data-testid="account-link"]')]);
    expect((await page.textContent('[data-testid="account-username"]')).includes('user2'), 'the detail page shows user2');
    await shot('detail');

    // Create an account, then disable it with a reason.
    const username = `new-${LANG.toLowerCase()}`;
    await page.goto(`${BASE}/admin/accounts/new`);
    await page.fill('[data-testid="new-username"]', username);
    await page.fill('input[name="display_name"]', zh ? '李四' : 'Li Si');
    await shot('new');
    await Promise.all([page.waitForLoadState('load'), page.click('[data-testid="create-account"]')]);
    expect((await page.textContent('[data-testid="account-username"]')).includes(username), 'the new account is shown');
    await page.fill('[data-testid="status-reason"]', zh ? '离职' : 'left the company');
    await Promise.all([page.waitForLoadState('load'), page.click('[data-testid="toggle-status"]')]);
    await confirmIfAsked();
    expect((await page.locator('[data-testid="status-disabled"]').count()) === 1, 'the account is disabled');
    await shot('disabled');

    // Refusals: an empty search shows a calm "no results", and an
    // auditor-only account cannot open the accounts console.
    await page.goto(`${BASE}/admin/accounts?q=${encodeURIComponent('nobody-matches-this')}`);
    expect((await page.locator('[data-testid="no-results"]').count()) === 1, 'no results is said');
    await page.context().clearCookies();
    await page.context().addCookies([{ name: 'wxfed_lang', value: LANG, url: BASE }]);
    await signIn(AUDITOR);
    const response = await page.goto(`${BASE}/admin/accounts`);
    expect(response.status() === 403, `an auditor gets 403 on the admin console, not ${response.status()}`);
    await shot('forbidden');
});
