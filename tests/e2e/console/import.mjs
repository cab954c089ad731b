// Bulk import (issue 8 §5): an admin uploads a small CSV file, previews it
// (a dry run: nothing is written), confirms (through the password prompt if
// it appears), and pastes the same content again: every line unchanged.
// Runs once per language against one server: usernames carry LANG.
import { ADMIN, BASE, LANG, cli, expect, run } from './lib.mjs';

run('import', async ({ page, shot, signIn, pageLang, confirmIfAsked }) => {
    const suffix = LANG.toLowerCase().replace(/[^a-z]/g, '');
    const submit = async (selector) =>
        Promise.all([page.waitForLoadState('load'), page.waitForNavigation(), page.click(selector)]);
    const csv = `username,name,email,roles\nimp-${suffix}-1,Imported One,one-${suffix}@example.com,auditor\nimp-${suffix}-2,,,\n`;
    await signIn(ADMIN);
    await page.goto(`${BASE}/admin/import`);
    expect((await pageLang()) === LANG, `the page is in ${LANG}`);
    await page.setInputFiles('[data-testid="import-file"]', { name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.fill('[data-testid="import-reason"]', 'e2e import');
    await shot('import-form');
    await submit('[data-testid="import-preview-button"]');
    await confirmIfAsked();
    await page.waitForSelector('[data-testid="import-preview"]');
    expect((await page.locator('[data-testid="import-line"]').count()) === 2, 'the preview lists both lines');
    const before = JSON.parse(cli(['user', 'list', '--json']));
    expect(!before.some((u) => u.username === `imp-${suffix}-1`), 'the preview wrote nothing');
    await shot('import-preview');
    await submit('[data-testid="import-confirm"]');
    await confirmIfAsked();
    await page.waitForSelector('[data-testid="import-done"]');
    await shot('import-done');
    const after = JSON.parse(cli(['user', 'list', '--json']));
    expect(after.some((u) => u.username === `imp-${suffix}-1`) && after.some((u) => u.username === `imp-${suffix}-2`),
        'both accounts were imported');

    // The same file again: nothing to do.
    await page.goto(`${BASE}/admin/import`);
    await page.fill('[data-testid="import-content"]', csv);
    await submit('[data-testid="import-preview-button"]');
    await confirmIfAsked();
    await page.waitForSelector('[data-testid="import-preview"]');
    const counts = await page.textContent('[data-testid="import-counts"]');
    expect(/0 \/ 0 \/ 2 \/ 0/.test(counts), `a second import changes nothing: ${counts}`);
    await shot('import-again');
});
