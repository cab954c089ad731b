// Clients, signing keys, settings (issue 8 §6): an admin adds a client,
// sees its secret once, rotates it (through the password prompt if it
// appears), edits its redirect URIs, and opens the keys and settings pages.
// Runs once per language against one server: names carry LANG.
import { ADMIN, BASE, LANG, expect, run } from './lib.mjs';

run('clients', async ({ page, shot, signIn, pageLang, confirmIfAsked }) => {
    const suffix = LANG.toLowerCase();
    const submit = async (selector) =>
        Promise.all([page.waitForLoadState('load'), page.waitForNavigation(), page.click(selector)]);
    await signIn(ADMIN);
    await page.goto(`${BASE}/admin/clients`);
    expect((await pageLang()) === LANG, `the page is in ${LANG}`);
    await shot('clients');

    const name = `e2e-client-${suffix}`;
    await page.fill('[data-testid="new-client-name"]', name);
    await page.fill('[data-testid="new-client-redirect-uris"]', `https://${suffix}.app.example.com/cb`);
    await submit('[data-testid="add-client"]');
    const secret = await page.textContent('[data-testid="client-secret"]');
    expect(secret && secret.length >= 32, 'the new secret is shown once');
    const clientId = (await page.textContent('[data-testid="client-id"]')).trim();
    await shot('client-added');

    await submit('[data-testid="rotate-secret"]');
    await confirmIfAsked();
    const rotated = await page.textContent('[data-testid="client-secret"]');
    expect(rotated && rotated !== secret, 'the rotated secret is new');
    await shot('secret-rotated');

    await page.goto(`${BASE}/admin/clients/${clientId}`);
    expect(!(await page.locator('[data-testid="client-secret"]').count()), 'the secret is not shown again');
    await page.fill('[data-testid="client-redirect-uris"]', `https://${suffix}.app.example.com/cb\nhttps://${suffix}.app.example.com/cb2`);
    await submit('[data-testid="save-client"]');
    expect(await page.locator('[data-testid="notice"]').count(), 'saved');
    expect((await page.inputValue('[data-testid="client-redirect-uris"]')).includes('/cb2'), 'the new redirect URI is kept');
    await shot('client-edited');

    await page.goto(`${BASE}/admin/clients`);
    expect((await page.textContent('[data-testid="clients"]')).includes(name), 'the client is listed');

    await page.goto(`${BASE}/admin/wechat-apps`);
    const appid = `wxe2e${suffix.replace('-', '')}0001`;
    await page.fill('[data-testid="new-app-appid"]', appid);
    await page.fill('[data-testid="new-app-name"]', `e2e app ${LANG}`);
    await page.fill('[data-testid="new-app-secret"]', 'e2e-app-secret');
    await submit('[data-testid="add-app"]');
    await confirmIfAsked();
    expect((await page.textContent('[data-testid="wechat-apps"]')).includes(appid), 'the WeChat app is listed');
    await shot('wechat-apps');

    await page.goto(`${BASE}/admin/keys`);
    expect(await page.locator('[data-testid="keys"] tr[data-kid]').count() >= 3, 'one key per algorithm at least');
    await shot('keys');

    await page.goto(`${BASE}/admin/settings`);
    const settings = await page.textContent('[data-testid="settings"]');
    expect(settings.includes('admin_reauth_secs'), 'the settings are listed');
    await shot('settings');
});
