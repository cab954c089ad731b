// WeChat identities and merging (issue 8 §4): pre-provision a UnionID for
// user1, find user1 by it, open the identity, unlink, link again, preview
// and perform a merge. Identifiers differ per language (one server serves
// both runs).
import { run, expect, cli, BASE, LANG } from './lib.mjs';

const tag = LANG === 'en' ? 'en' : 'zh';
const UNIONID = `oE2Eunion${tag}0123456789abcd`;
const PLATFORM = `e2e-${tag}`;

run('identities', async ({ page, shot, signIn, pageLang, confirmIfAsked }) => {
    // The merge of the zh-CN run takes user2 into user3; the en run merges
    // two accounts of its own (user2 is merged away by then).
    const [mergeFrom, mergeInto] = LANG === 'en' ? ['merge-from-en', 'merge-into-en'] : ['user2', 'user3'];
    if (LANG === 'en') {
        for (const name of [mergeFrom, mergeInto]) cli(['user', 'add', name, '--name', name]);
    }

    /// Submits a sensitive form; confirms the password if asked.
    const submit = async (testid) => {
        await Promise.all([page.waitForLoadState('load'), page.click(`[data-testid="${testid}"]`)]);
        await confirmIfAsked();
    };

    await signIn('admin');
    expect((await pageLang()) === LANG, `page language ${await pageLang()}`);

    // Pre-provision from the account page of user1.
    await page.goto(`${BASE}/admin/accounts?q=user1`);
    await page.click('[data-testid="account-link"]');
    await page.click('[data-testid="link-identity"]');
    await shot('preprovision-form');
    await page.check('[data-testid="pp-kind-unionid"]');
    await page.fill('[data-testid="pp-open-platform"]', PLATFORM);
    await page.fill('[data-testid="pp-unionid"]', UNIONID);
    await page.fill('[data-testid="pp-reason"]', LANG === 'en' ? 'bring the mini-program users' : '导入小程序用户');
    await submit('pp-submit');
    expect(page.url().includes('/admin/identities/'), `after pre-provision: ${page.url()}`);
    expect(await page.textContent('[data-testid="linked-account"]') === 'user1', 'linked to user1');
    await shot('identity-preprovisioned');

    // Find the account by the UnionID.
    await page.goto(`${BASE}/admin/accounts`);
    await page.fill('[data-testid="search-input"]', UNIONID);
    await Promise.all([page.waitForLoadState('load'), page.click('[data-testid="search-submit"]')]);
    const found = await page.$$eval('[data-testid="account-link"]', (as) => as.map((a) => a.textContent));
    expect(found.length === 1 && found[0] === 'user1', `search by UnionID found ${found}`);
    await shot('accounts-by-unionid');

    // The identity list, searched by the UnionID, then the identity.
    await page.goto(`${BASE}/admin/identities?q=${encodeURIComponent(UNIONID)}`);
    await shot('identities-search');
    await Promise.all([page.waitForLoadState('load'), page.click('[data-testid="identity-link"]')]);
    await shot('identity');

    // Unlink, then link again.
    await page.fill('[data-testid="unlink-reason"]', LANG === 'en' ? 'wrong person' : '绑定错误');
    await submit('unlink');
    expect(await page.$('[data-testid="identity-unlinked"]'), 'unlinked');
    await shot('identity-unlinked');
    await page.fill('[data-testid="link-username"]', 'user1');
    await page.fill('[data-testid="link-reason"]', LANG === 'en' ? 'confirmed by phone' : '电话确认');
    await submit('link');
    expect(await page.textContent('[data-testid="linked-account"]') === 'user1', 'linked again');
    await shot('identity-linked-again');

    // Merge: preview, choose sides where asked, perform.
    await page.goto(`${BASE}/admin/accounts?q=${mergeFrom}`);
    await page.click('[data-testid="account-link"]');
    await page.click('[data-testid="merge-start"]');
    await page.fill('[data-testid="merge-into"]', mergeInto);
    await Promise.all([page.waitForLoadState('load'), page.click('[data-testid="merge-preview"]')]);
    expect(await page.$('[data-testid="merge-plan"]'), 'a merge preview');
    for (const field of ['phone', 'email']) {
        if (await page.$(`[data-testid="prefer-${field}-into"]`)) await page.check(`[data-testid="prefer-${field}-into"]`);
    }
    await page.fill('[data-testid="merge-reason"]', LANG === 'en' ? 'same person' : '同一人的两个账号');
    await shot('merge-preview');
    await submit('merge-submit');
    expect(await page.textContent('[data-testid="account-username"]').then((t) => t.includes(mergeInto)), `after merge: ${page.url()}`);
    await shot('merged');
    await page.goto(`${BASE}/admin/accounts?q=${mergeFrom}`);
    await page.click('[data-testid="account-link"]');
    expect(await page.$('[data-testid="status-disabled"]'), 'the merged-away account is disabled');
    await shot('merged-away-disabled');
});
