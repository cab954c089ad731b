// The auditor's console (issue 9): the auditor signs in, filters the log
// (action + account), opens an event and the account it is about (read
// only), exports a range as CSV and JSON Lines (checking the files), and
// finds each of these reads recorded (category audit_access).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AUDITOR, BASE, LANG, PASSWORD, WORK, cli, expect, run } from './lib.mjs';

const today = new Date().toISOString().slice(0, 10);
const title = { 'zh-CN': '审计日志', en: 'Audit log' }[LANG];

run('audit', async ({ page, shot, pageLang }) => {
    // A failed sign-in for the report below.
    await page.goto(`${BASE}/login`);
    await page.fill('input[name="username"]', 'user1');
    await page.fill('input[name="password"]', 'not the password');
    await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);

    // Sign in, coming back to the log.
    await page.goto(`${BASE}/login?return_to=${encodeURIComponent('/audit')}`);
    await page.fill('input[name="username"]', AUDITOR);
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(/\/audit$/), page.click('button[type="submit"]')]);
    expect((await pageLang()) === LANG, `page language ${await pageLang()}, wanted ${LANG}`);
    expect((await page.textContent('h1')).includes(title), `the log's title is ${title}`);
    await page.waitForSelector('[data-testid="chain-status"]');
    await shot('log');

    // Filter: the auditor's own password logins.
    await page.fill('[data-testid="filter-action"]', 'login.password');
    await page.fill('[data-testid="filter-account"]', AUDITOR);
    await Promise.all([page.waitForURL(/action=login.password/), page.click('[data-testid="filter-submit"]')]);
    // The form's blank fields are dropped: a short link to share.
    expect(new URL(page.url()).search === `?action=login.password&account=${AUDITOR}`, `the filtered view is a link: ${page.url()}`);
    // Actions are shown by their label, the code in the cell's title.
    const actions = await page.$$eval('[data-testid="event-row"] td:nth-child(4)', (els) => els.map((e) => e.title));
    const label = { 'zh-CN': '密码登录', en: 'Password sign-in' }[LANG];
    expect((await page.textContent('[data-testid="event-row"] td:nth-child(4)')) === label, `the action's label is ${label}`);
    expect(actions.length >= 1, 'the auditor\'s login is in the log');
    expect(actions.every((a) => a === 'login.password'), `only login.password rows: ${actions}`);
    await shot('filtered');

    // Open the newest matching event.
    await Promise.all([page.waitForURL(/\/audit\/events\/\d+$/), page.click('[data-testid="event-link"] >> nth=0')]);
    expect((await page.textContent('[data-testid="event-action"]')) === 'login.password', 'the event page shows the action');
    expect((await page.$('[data-testid="check-content"] .badge:not(.off)')) !== null, 'its content verifies');
    expect((await page.$('[data-testid="check-link"] .badge:not(.off)')) !== null, 'its link verifies');
    await shot('event');

    // The account it is about: read only, no forms.
    await Promise.all([page.waitForURL(/\/admin\/accounts\//), page.click('[data-testid="event-account"]')]);
    await page.waitForSelector('[data-testid="read-only"]');
    expect((await page.$$('form[method="post"]')).length === 0, 'no action forms for an auditor');
    await shot('account-read-only');

    // A range: today's authentication events, exported.
    await page.goto(`${BASE}/audit`);
    await page.fill('[data-testid="filter-from"]', today);
    await page.fill('[data-testid="filter-to"]', today);
    await page.selectOption('[data-testid="filter-category"]', 'authentication');
    await Promise.all([page.waitForURL(/category=authentication/), page.click('[data-testid="filter-submit"]')]);
    const shown = await page.$$eval('[data-testid="event-row"]', (rows) => rows.map((r) => r.dataset.seq));
    await shot('range');
    const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-csv"]')]);
    const csvFile = path.join(WORK, 'audit.csv');
    await csvDownload.saveAs(csvFile);
    const csvLines = readFileSync(csvFile, 'utf8').trim().split('\n');
    expect(csvLines[0].startsWith('seq,id,occurred_at,category,action,outcome'), `CSV header: ${csvLines[0]}`);
    const csvSeqs = csvLines.slice(1).map((l) => l.split(',')[0]);
    expect(csvSeqs.length >= shown.length && shown.length > 0, `CSV has ${csvSeqs.length} rows, page ${shown.length}`);
    expect(shown.every((s) => csvSeqs.includes(s)), 'every shown event is in the CSV');
    expect(csvLines.slice(1).every((l) => l.split(',')[3] === 'authentication'), 'CSV holds only the category');
    const [jsonlDownload] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="export-jsonl"]')]);
    const jsonlFile = path.join(WORK, 'audit.jsonl');
    await jsonlDownload.saveAs(jsonlFile);
    const lines = readFileSync(jsonlFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const exported = lines.filter((l) => l.type === 'event');
    expect(exported.length === csvSeqs.length, `JSONL ${exported.length} events, CSV ${csvSeqs.length}`);
    expect(exported.every((e) => e.category === 'authentication' && e.occurred_at.startsWith(today) && e.hash.length === 64),
        'JSONL events are the range, with their chain fields');
    expect(lines[0].type === 'header' && lines[lines.length - 1].type === 'checkpoint', 'the JSONL export carries its proof');
    // It proves itself with the audit public key alone.
    const publicKey = cli(['audit', 'key', 'show']).trim();
    const verified = cli(['audit', 'verify-export', jsonlFile, '--public-key', publicKey]);
    expect(verified.startsWith('export OK'), `verify-export: ${verified}`);
    await shot('exported');

    // The failed sign-in report: user1's failure above (a CLI command
    // chains what is pending when it exits, so no waiting for the server's chainer).
    cli(['audit', 'list', '--limit', '1']);
    await Promise.all([page.waitForURL(/\/audit\/reports\/failed-logins/), page.click('[data-testid="nav-failed-logins-report"]')]);
    const failed = await page.$$eval('[data-testid="top-account"] a', (els) => els.map((e) => e.textContent));
    expect(failed.includes('user1'), `user1 in the failed sign-in report: ${failed}`);
    await shot('failed-logins-report');

    // One account's sign-ins: user1's failure, by surface.
    await Promise.all([page.waitForURL(/\/audit\/reports\/logins/), page.click('[data-testid="nav-logins-report"]')]);
    await page.fill('[data-testid="logins-account"]', 'user1');
    await Promise.all([page.waitForURL(/account=user1/), page.click('[data-testid="period-submit"]')]);
    const logins = await page.$$eval('[data-testid="login-row"]', (rows) => rows.map((r) => [r.dataset.outcome, r.dataset.surface]));
    expect(logins.some(([o, s]) => o === 'failure' && s === 'password'), `user1's failed password sign-in listed: ${logins}`);
    await shot('logins-report');

    // Admin actions: who changed what (the setup's CLI changes at least).
    await Promise.all([page.waitForURL(/\/audit\/reports\/admin-actions/), page.click('[data-testid="nav-admin-actions-report"]')]);
    expect((await page.$$('[data-testid="change-row"]')).length > 0, 'admin changes listed');
    await shot('admin-actions-report');

    // The signed checkpoints and the key that verifies them.
    await Promise.all([page.waitForURL(/\/audit\/checkpoints$/), page.click('[data-testid="nav-checkpoints"]')]);
    const keys = await page.$$eval('[data-testid="public-key"]', (els) => els.map((e) => e.textContent));
    expect(keys.includes(publicKey), 'the page shows the public key verify-export takes');
    expect((await page.$$('[data-testid="checkpoint"]')).length > 0, 'checkpoints listed');
    await shot('checkpoints');

    // Each read above is in the trail (CLI: chains first on exit of the previous command).
    cli(['audit', 'list', '--limit', '1']);
    const events = JSON.parse(cli(['audit', 'list', '--limit', '200', '--json']));
    const access = events.filter((e) => e.category === 'audit_access');
    for (const action of ['audit.searched', 'audit.event_viewed', 'audit.account_viewed', 'audit.exported', 'audit.report_viewed']) {
        expect(access.some((e) => e.action === action), `${action} recorded`);
    }
    const searched = access.find((e) => e.action === 'audit.searched' && e.detail.filters.action === 'login.password');
    expect(searched && searched.detail.filters.account === AUDITOR, 'the search is recorded with its filters');

    // The admin console is not the auditor's: refused.
    const refused = await page.goto(`${BASE}/admin`);
    expect(refused.status() === 403, `/admin answers ${refused.status()} to an auditor`);
    await shot('admin-refused');
});
