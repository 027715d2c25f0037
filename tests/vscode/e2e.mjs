// End-to-end test of the Hotline VS Code extension in a real VS Code: code-server (127.0.0.1, the built .vsix
// installed) driven by Debian's headless Chromium through playwright-core. Run by test_vscode_e2e.py.
//
// Scenario "main" (default), on a copy of examples/counter: the status item appears (idle); open src/main.rs;
// "Hotline: Run App" from the palette -> building n/m -> running, and the "Hotline: counter" terminal is
// revealed with the app's output; edit "hello" in the editor, Ctrl+S -> patched Nms in the status bar and a
// "patched in" code lens right above fn greeting; the app's new output in the terminal; the log has the
// patch and the language server's Python; a compile error -> "Hotline: compile error (1 error)", in the log
// too; fixed -> patched/running; screenshot; the lens and "Hotline: Show Last Patch" open the Markdown
// preview; "Hotline: Restart App (Full Rebuild)" -> building -> running; "Hotline: Force Full Rebuild" -> a
// new app from a clean build (the crate's binary written again although nothing changed); no notification
// (toast) popped up for any of that. "Hotline: Attach Debugger" without a debugger extension -> a message
// with the app's pid; an edit that panics -> stopped (exit 101) and a notification with the panic and "Show
// Output", which shows the terminal with the panic; the fix saved -> the app runs again (relaunched by the
// save, else Run App); "Hotline: Stop App" -> stopped. SIGKILL the language server -> the extension
// restarts it; Run App + Stop App work on the new server; SIGKILL it until the restart budget (MAX_RESTARTS)
// is spent -> "server stopped" and one error notification, no new server; "Hotline: Restart Language
// Server" -> a new server that runs the app.
// Scenario "reload" (issue 14), on a copy of examples/counter: Run App -> running, "hello frame=N" in the
// terminal; "Developer: Reload Window" -> without Run, the new language server re-attaches: "Hotline: running"
// with the same pid in the tooltip, one app process (the same), the terminal shown by itself with
// "[hotline] app re-attached (pid P)" and frames (and the static ticks) above N, the log says "app re-attached";
// edit + save -> patched, the new greeting in the terminal; 13 s after the reload (past the reaper's 10 s) the
// same app still counts; Stop App. Then `hotline run` in a child process owns the crate: Run App -> a warning
// "… is already under another Hotline, pid C (its app is pid A) …" with "Take over" -> clicked: `hotline run`
// exits, running with pid A, "app re-attached (pid A)" in the log; Stop App. Last, a compile error and Run App:
// the failed full build's error notification, without rustc's colour codes.
// Scenario "no-python": hotline.pythonPath points nowhere -> "server stopped" + a notification saying how to fix.
// Scenario "user-settings": the Settings editor's User tab lists hotline.pythonPath.
// Scenario "receipts" (issue 25), on a copy of tests/apps/receipts: an edit of a function called in a loop and
// of one that ran once at start, saved -> "patched in Nms · ran" and "· not called since the patch" lenses
// above them, the status item warns (HL1013 in its tooltip), no notification.
//
// Usage: node e2e.mjs <config.json>; config = {codeServer, vsix, folder, workDir, artifacts, chromium?,
// pathPrefix?, python? (runs `hotline run`), newGreeting?, scenario?, settings?, buildTimeoutMs?, maxRestarts?}. Progress goes to stderr; the last stdout
// line is the JSON result {ok, steps: [{step, ms, at}], statusTexts, lens, appLine, screenshot, error?, ...};
// the exit code is 0 iff ok.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const CHROMIUM = cfg.chromium ?? '/usr/bin/chromium';
const NEW_GREETING = cfg.newGreeting ?? 'howdy';
const result = { ok: false, steps: [], screenshot: null, statusTexts: [], lens: null, appLine: null };
const t0 = Date.now();
let last = t0;
function step(name) {
    const now = Date.now();
    result.steps.push({ step: name, ms: now - last, at: now - t0 });
    last = now;
    console.error(`[e2e ${((now - t0) / 1000).toFixed(1)}s] ${name}`);
}

function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

async function waitHttp(url, ms) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        try {
            const r = await fetch(url);
            if (r.status < 500) return;
        } catch {}
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`code-server did not answer on ${url} in ${ms} ms`);
}

const dirs = {
    userData: path.join(cfg.workDir, 'user-data'),
    extensions: path.join(cfg.workDir, 'extensions'),
    browser: path.join(cfg.workDir, 'browser'),
};
for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
fs.mkdirSync(cfg.artifacts, { recursive: true });
const SCENARIO = cfg.scenario ?? 'main';
fs.rmSync(path.join(cfg.artifacts, `vscode-e2e-${SCENARIO}-failure.png`), { force: true });
fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
fs.writeFileSync(
    path.join(dirs.userData, 'User', 'settings.json'),
    JSON.stringify(
        {
            'workbench.startupEditor': 'none',
            'workbench.tips.enabled': false,
            'workbench.enableExperiments': false,
            'security.workspace.trust.enabled': false,
            'telemetry.telemetryLevel': 'off',
            'extensions.ignoreRecommendations': true,
            'extensions.autoCheckUpdates': false,
            'extensions.autoUpdate': false,
            'update.mode': 'none',
            'editor.codeLens': true,
            'editor.minimap.enabled': false,
            'files.autoSave': 'off',
            'window.commandCenter': false,
            'chat.disableAIFeatures': true,
            'workbench.colorTheme': 'Default Dark Modern',
            // xterm's DOM renderer (the terminal's text is in the page), tabs listed even for one terminal.
            'terminal.integrated.gpuAcceleration': 'off',
            'terminal.integrated.tabs.hideCondition': 'never',
            // Typed code goes in as typed.
            'editor.autoClosingBrackets': 'never',
            'editor.autoClosingQuotes': 'never',
            'editor.autoSurround': 'never',
            ...(cfg.settings ?? {}),
        },
        null,
        2,
    ),
);
const env = { ...process.env, ...(cfg.pathPrefix ? { PATH: `${cfg.pathPrefix}:${process.env.PATH}` } : {}) };
const csArgs = ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions];

let server;
let cli; // the reload scenario's `hotline run`
let context;
let page;
let serverLog = '';
try {
    const inst = spawnSync(cfg.codeServer, [...csArgs, '--install-extension', cfg.vsix], { env, encoding: 'utf8', timeout: 60000 });
    if (inst.status !== 0) throw new Error(`installing the vsix failed: ${inst.stdout}\n${inst.stderr}`);
    step('install vsix');

    const port = await freePort();
    const configFile = path.join(cfg.workDir, 'code-server.yaml');
    fs.writeFileSync(configFile, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
    server = spawn(
        cfg.codeServer,
        [
            '--config', configFile, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, ...csArgs,
            '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
            cfg.folder,
        ],
        { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server.stdout.on('data', (d) => (serverLog += d));
    server.stderr.on('data', (d) => (serverLog += d));
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(cfg.folder)}`;
    await waitHttp(`http://127.0.0.1:${port}/healthz`, 20000);
    step('code-server up');

    context = await chromium.launchPersistentContext(dirs.browser, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1440, height: 900 },
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://127.0.0.1:${port}` });
    page = context.pages()[0] ?? (await context.newPage());
    await page.goto(url);
    await page.locator('.monaco-workbench').waitFor({ timeout: 30000 });
    step('workbench loaded');

    // The extension's item (createStatusBarItem('hotline.status')): its element id contains that id.
    const status = page.locator('.statusbar-item[id*="hotline.status"]');
    await status.first().waitFor({ timeout: 30000 });
    const statusText = async () => (await status.first().innerText()).replace(/\s+/g, ' ').trim();
    // Every text the item shows and every notification toast, recorded in the page (again after a reload).
    async function installRecorders() {
        // Every text the item shows (short states like a no-op build are not missed).
        await page.evaluate(() => {
            const el = document.querySelector('.statusbar-item[id*="hotline.status"]');
            const seen = (window.__hotlineStatus = []);
            const record = () => {
                const text = el.innerText.replace(/\s+/g, ' ').trim();
                if (seen[seen.length - 1] !== text) seen.push(text);
            };
            record();
            new MutationObserver(record).observe(el, { subtree: true, childList: true, characterData: true, attributes: true });
        });
        // Every notification toast shown (text): a toast that hides itself is not missed.
        await page.evaluate(() => {
            const seen = (window.__hotlineToasts = []);
            const texts = new Set();
            const scan = () => {
                for (const el of document.querySelectorAll('.notifications-toasts .notification-list-item')) {
                    const text = el.innerText.replace(/\s+/g, ' ').trim();
                    if (text && !texts.has(text)) {
                        texts.add(text);
                        seen.push({ text, at: Date.now() });
                    }
                }
            };
            scan();
            new MutationObserver(scan).observe(document.body, { subtree: true, childList: true, characterData: true });
        });
    }
    await installRecorders();
    const toasts = () => page.evaluate(() => window.__hotlineToasts.map((t) => t.text));
    const history = () => page.evaluate(() => window.__hotlineStatus.slice());
    /** The history's length: pass it to waitStatus to only look at what the status bar shows from now on. */
    const mark = async () => (await history()).length;
    /** Waits for a status text matching `re` shown at or after index `since` (default: the current text). */
    async function waitStatus(re, ms, since) {
        const deadline = Date.now() + ms;
        let seen = [];
        while (Date.now() < deadline) {
            seen = await history();
            const from = since ?? seen.length - 1;
            for (let i = Math.max(0, from); i < seen.length; i++) {
                if (re.test(seen[i])) return { text: seen[i], index: i + 1 };
                if (/error/.test(seen[i])) {
                    const tip = await status.first().getAttribute('aria-label').catch(() => '');
                    throw new Error(`status bar showed "${seen[i]}" (${tip}) while waiting for ${re}`);
                }
            }
            if (since === undefined) since = Math.max(0, seen.length - 1);
            await page.waitForTimeout(100);
        }
        throw new Error(`status bar never showed ${re} in ${ms} ms; it showed ${JSON.stringify(seen)}`);
    }
    await waitStatus(/Hotline/, 30000);
    step('extension active (status item: idle)');

    // Runs a command from the palette (F1). Retried: a webview (the Markdown preview) taking focus closes
    // the palette; the row is clicked, not Enter, so a keypress never lands in the editor.
    async function runCommand(title) {
        const input = page.locator('.quick-input-widget input');
        let lastError;
        for (let attempt = 0; attempt < 4; attempt++) {
            try {
                if (attempt > 0) {
                    await page.keyboard.press('Escape');
                    await page.locator('.part.sidebar').first().click({ position: { x: 100, y: 400 } });
                    await page.waitForTimeout(300);
                }
                await page.keyboard.press('F1');
                await input.waitFor({ state: 'visible', timeout: 4000 });
                await input.fill(`>${title}`, { timeout: 4000 });
                const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
                await row.click({ timeout: 5000 });
                return;
            } catch (err) {
                lastError = err;
                console.error(`[e2e] running "${title}" from the palette failed (attempt ${attempt + 1}): ${String(err).split('\n')[0]}`);
            }
        }
        throw lastError;
    }

    flow: {
    if (cfg.scenario === 'no-python') {
        // hotline.pythonPath points at nothing: the status bar says the server is down and one error
        // notification says how to fix it.
        await waitStatus(/server stopped/, 30000);
        const toast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'pip install -e' }).first();
        await toast.waitFor({ timeout: 15000 });
        result.notification = (await toast.innerText()).replace(/\s+/g, ' ').trim();
        result.statusText = await statusText();
        result.statusTexts = await history();
        result.screenshot = path.join(cfg.artifacts, 'vscode-e2e-no-python.png');
        await page.screenshot({ path: result.screenshot });
        step('no Python: status bar + notification');
        result.ok = true;
        break flow;
    }

    if (cfg.scenario === 'user-settings') {
        // The Settings editor opens on the User tab; searching hotline.pythonPath there lists it (a setting
        // with a machine scope is only listed under Remote in code-server, a remote window).
        await runCommand('Preferences: Open User Settings');
        const search = page.locator('.settings-editor .settings-header .suggest-input-container textarea, .settings-editor .settings-header input').first();
        await search.waitFor({ timeout: 15000 });
        await page.keyboard.type('hotline.pythonPath');
        await page.waitForTimeout(1500);
        result.activeSettingsTab = (await page.locator('.settings-editor .settings-tabs-widget [role="tab"][aria-selected="true"]').first().innerText({ timeout: 5000 })).trim();
        const item = page.locator('.settings-editor .setting-item-contents', { hasText: 'Python Path' }).first();
        result.pythonPathListed = await item.waitFor({ timeout: 5000 }).then(() => true, () => false);
        result.settingItems = await page.locator('.settings-editor .setting-item-contents .setting-item-title').allInnerTexts();
        result.settingsEmptyMessage = (await page.locator('.settings-editor .no-results-message').first().innerText({ timeout: 2000 }).catch(() => '')).trim();
        result.screenshot = path.join(cfg.artifacts, 'vscode-e2e-user-settings.png');
        await page.screenshot({ path: result.screenshot });
        step(`User settings: ${result.activeSettingsTab}; hotline.pythonPath listed: ${result.pythonPathListed}`);
        result.ok = true;
        break flow;
    }

    if (SCENARIO === 'receipts') {
        // Receipts (issue 25), on a copy of tests/apps/receipts: `settings` runs once at start, `step` in a
        // loop. Both edited in one save: the lens above fn step says "· ran", the one above fn settings
        // "· not called since the patch" (3 s later), the status item warns and its tooltip says HL1013;
        // no notification pops up.
        await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } }).catch(() => {});
        await page.keyboard.press('Control+P');
        await page.locator('.quick-input-widget input').waitFor({ timeout: 10000 });
        await page.keyboard.type('src/main.rs');
        await page.locator('.quick-input-list .monaco-list-row', { hasText: 'main.rs' }).first().waitFor({ timeout: 10000 });
        await page.keyboard.press('Enter');
        const settingsLine = page.locator('.monaco-editor .view-line', { hasText: 'fn settings' });
        await settingsLine.waitFor({ timeout: 15000 });
        let since = await mark();
        await runCommand('Hotline: Run App');
        await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, since);
        step('receipts app running');
        const toastsFrom = (await toasts()).length;
        /** Double-clicks the token `word` on the editor line matching `line` and types `text` over it. */
        async function retype(line, word, text) {
            const token = page.locator('.monaco-editor .view-line', { hasText: line }).locator('span span', { hasText: word }).first();
            await token.waitFor({ timeout: 10000 });
            const b = await token.boundingBox();
            await page.mouse.dblclick(b.x + b.width / 2, b.y + b.height / 2);
            await page.keyboard.type(text);
        }
        await retype(/^\s*n\s\+\s1$/, /^1$/, '100');
        await retype(/^\s*7$/, /^7$/, '8');
        await page.locator('.monaco-editor .view-line', { hasText: /^\s*n\s\+\s100$/ }).waitFor({ timeout: 5000 });
        await page.locator('.monaco-editor .view-line', { hasText: /^\s*8$/ }).waitFor({ timeout: 5000 });
        since = await mark();
        await page.keyboard.press('Control+S');
        await waitStatus(/patched/, 60000, since);
        step('edited step and settings, saved: patched');
        /** The lens text above the editor line matching `line`, once it matches `re`. */
        async function lensAbove(line, re, ms) {
            const deadline = Date.now() + ms;
            let seen = [];
            while (Date.now() < deadline) {
                const fnBox = await page.locator('.monaco-editor .view-line', { hasText: line }).first().boundingBox();
                seen = [];
                for (const lens of await page.locator('.codelens-decoration').all()) {
                    const text = (await lens.innerText()).replace(/\s+/g, ' ').trim();
                    const box = await lens.boundingBox();
                    const dy = fnBox && box ? fnBox.y - box.y : -1;
                    seen.push({ text, dy });
                    if (re.test(text) && dy > 0 && dy < 2.5 * fnBox.height) return text;
                }
                await page.waitForTimeout(200);
            }
            throw new Error(`no lens ${re} above ${line} in ${ms} ms: ${JSON.stringify(seen)}`);
        }
        result.receipts = {
            ranLens: await lensAbove('fn step', /patched in \d+ms · ran/, 20000),
            notRunLens: await lensAbove('fn settings', /patched in \d+ms · not called since the patch/, 15000),
        };
        result.receipts.statusText = await statusText();
        await status.first().hover();
        const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'Hotline:' }).first();
        result.receipts.tooltip = (await hover.innerText({ timeout: 5000 }).catch(() => '')).trim();
        await page.mouse.move(700, 300);
        result.receipts.toasts = (await toasts()).slice(toastsFrom);
        result.screenshot = path.join(cfg.artifacts, 'vscode-e2e-receipts.png');
        await page.screenshot({ path: result.screenshot });
        step(`receipts: ${JSON.stringify(result.receipts)}`);
        await runCommand('Hotline: Stop App');
        await waitStatus(/stopped/, 30000);
        result.statusTexts = await history();
        result.ok = true;
        break flow;
    }

    if (SCENARIO === 'live-frames') {
        // Live frames (issue 25, HL1012), on a copy of tests/apps/live_loops: thread worker-1 runs worker()'s
        // loop forever. An edit in that loop is patched, and the editor says the loop keeps its old code: a
        // lens above fn worker, a warning in the Problems view, the status item's warning and tooltip.
        await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } }).catch(() => {});
        await page.keyboard.press('Control+P');
        await page.locator('.quick-input-widget input').waitFor({ timeout: 10000 });
        await page.keyboard.type('src/main.rs');
        await page.locator('.quick-input-list .monaco-list-row', { hasText: 'main.rs' }).first().waitFor({ timeout: 10000 });
        await page.keyboard.press('Enter');
        const pauseLine = page.locator('.monaco-editor .view-line', { hasText: 'let pause = 50;' });
        await pauseLine.waitFor({ timeout: 15000 });
        let since = await mark();
        await runCommand('Hotline: Run App');
        await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, since);
        step('live_loops running');
        const token = pauseLine.locator('span span', { hasText: /^50$/ }).first();
        await token.waitFor({ timeout: 10000 });
        const b = await token.boundingBox();
        await page.mouse.dblclick(b.x + b.width / 2, b.y + b.height / 2);
        await page.keyboard.type('60');
        await page.locator('.monaco-editor .view-line', { hasText: 'let pause = 60;' }).waitFor({ timeout: 5000 });
        since = await mark();
        await page.keyboard.press('Control+S');
        await waitStatus(/patched/, 60000, since);
        step('edited the worker loop, saved: patched');
        const fnLine = page.locator('.monaco-editor .view-line', { hasText: 'fn worker()' }).first();
        const deadline = Date.now() + 20000;
        let seen = [];
        result.liveFrames = { lens: null };
        while (Date.now() < deadline && !result.liveFrames.lens) {
            const fnBox = await fnLine.boundingBox();
            seen = [];
            for (const lens of await page.locator('.codelens-decoration').all()) {
                const text = (await lens.innerText()).replace(/\s+/g, ' ').trim();
                const box = await lens.boundingBox();
                const dy = fnBox && box ? fnBox.y - box.y : -1;
                seen.push({ text, dy });
                if (/HL1012/.test(text) && dy > 0 && dy < 2.5 * fnBox.height) result.liveFrames.lens = text;
            }
            if (!result.liveFrames.lens) await page.waitForTimeout(200);
        }
        if (!result.liveFrames.lens) throw new Error(`no HL1012 lens above fn worker: ${JSON.stringify(seen)}`);
        result.liveFrames.statusText = await statusText();
        await status.first().hover();
        const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'Hotline:' }).first();
        result.liveFrames.tooltip = (await hover.innerText({ timeout: 5000 }).catch(() => '')).trim();
        await page.mouse.move(700, 300);
        await runCommand('View: Focus Problems');
        const marker = page.locator('.markers-panel .monaco-list-row', { hasText: 'HL1012' }).first();
        await marker.waitFor({ timeout: 15000 });
        result.liveFrames.problem = (await marker.innerText()).replace(/\s+/g, ' ').trim();
        result.screenshot = path.join(cfg.artifacts, 'vscode-e2e-live-frames.png');
        await page.screenshot({ path: result.screenshot });
        step(`live frames: ${JSON.stringify(result.liveFrames)}`);
        await runCommand('Hotline: Stop App');
        await waitStatus(/stopped/, 30000);
        result.statusTexts = await history();
        result.ok = true;
        break flow;
    }

    // Open src/main.rs with Quick Open.
    await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } }).catch(() => {});
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').waitFor({ timeout: 10000 });
    await page.keyboard.type('src/main.rs');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'main.rs' }).first().waitFor({ timeout: 10000 });
    await page.keyboard.press('Enter');
    const greetingLine = page.locator('.monaco-editor .view-line', { hasText: 'fn greeting' });
    await greetingLine.waitFor({ timeout: 15000 });
    step('opened src/main.rs');

    // The app's terminal ("Hotline: <app>", a pseudo-terminal fed by hotline/output): xterm's DOM rows.
    const terminalLines = () =>
        page.evaluate(() =>
            Array.from(document.querySelectorAll('.part.panel .terminal-wrapper.active .xterm-rows > div')).map((d) =>
                d.textContent.replace(/\u00a0/g, ' ').trimEnd(),
            ),
        );
    /**
     * Waits for a line of the visible terminal matching `re`; returns it. With `scrollBack`, also looks at the
     * lines above the view, scrolling the terminal up (the DOM renderer only has the rows in view).
     */
    async function waitTerminal(re, ms, scrollBack = false) {
        const deadline = Date.now() + ms;
        let lines = [];
        while (Date.now() < deadline) {
            lines = await terminalLines();
            const hit = lines.find((l) => re.test(l));
            if (hit !== undefined) return hit;
            // Scrolls up a half page (scrollBack), else to the end (where a terminal scrolled up stays).
            const screen = page.locator('.part.panel .terminal-wrapper.active .xterm-screen').first();
            const box = await screen.boundingBox().catch(() => null);
            if (box) {
                await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
                await page.mouse.wheel(0, scrollBack ? -box.height / 2 : 100000);
            }
            await page.waitForTimeout(200);
        }
        throw new Error(`the terminal never showed ${re} in ${ms} ms; it showed ${JSON.stringify(lines.slice(-15))}`);
    }
    const terminalTabs = () => page.locator('.part.panel .terminal-tabs-entry').allInnerTexts();
    /** The text of the log ("Hotline: Show Log", an output channel): select all, copy, read the clipboard. */
    async function logText() {
        await runCommand('Hotline: Show Log');
        const lines = page.locator('.part.panel .view-lines');
        await lines.first().waitFor({ timeout: 10000 });
        await page.waitForTimeout(500);
        // The output's editor: the tallest in the panel (its filter box can be a small editor too).
        const editors = page.locator('.part.panel .monaco-editor');
        const boxes = await editors.evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON()));
        const view = boxes.reduce((a, b) => (b.height > a.height ? b : a));
        await page.mouse.click(view.x + view.width / 2, view.y + view.height / 2);
        await page.keyboard.press('Control+A');
        await page.keyboard.press('Control+C');
        await page.waitForTimeout(200);
        const text = await page.evaluate(() => navigator.clipboard.readText());
        await page.keyboard.press('Escape');
        return text;
    }
    /** Notifications shown from now on. */
    const toastMark = async () => (await toasts()).length;
    // This crate's language servers (their cwd) and app processes (executables under its target/hotline/run).
    const serverPids = () =>
        fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
            try {
                const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
                return cmd.includes('hotline.lsp') && fs.readlinkSync(`/proc/${pid}/cwd`) === cfg.folder;
            } catch {
                return false;
            }
        });
    const appPids = () =>
        fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
            try {
                return fs.readlinkSync(`/proc/${pid}/exe`).startsWith(path.join(cfg.folder, 'target', 'hotline', 'run') + '/');
            } catch {
                return false;
            }
        }).map(Number);

    let since = await mark();
    await runCommand('Hotline: Run App');
    step('ran "Hotline: Run App"');
    const running = await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, since);
    step(`status bar: ${running.text} (fat build done, app launched)`);

    // Run reveals the app's terminal by itself, and the app's output is in it.
    result.runTerminal = {
        panelVisible: await page.locator('.part.panel').first().isVisible(),
        line: await waitTerminal(/hello frame=\d+/, 15000),
        tabs: await terminalTabs(),
    };
    if (!result.runTerminal.tabs.some((t) => t.includes('Hotline: counter'))) {
        throw new Error(`no "Hotline: counter" terminal: ${JSON.stringify(result.runTerminal.tabs)}`);
    }
    step(`Run revealed the terminal ${JSON.stringify(result.runTerminal.tabs)}: "${result.runTerminal.line}"`);
    await greetingLine.click();

    if (SCENARIO === 'reload') {
        // A window reload keeps the app: the new language server re-attaches to it at once (no Run), its
        // state intact (frame= and the static ticks= go on from where they were), and the next save patches it.
        /** The status item's tooltip (a hover): the whole message and the app's pid. */
        async function statusTooltip() {
            for (let attempt = 0; attempt < 4; attempt++) {
                await page.mouse.move(700, 300);
                await page.waitForTimeout(300);
                await status.first().hover();
                const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'Hotline:' }).first();
                const text = await hover.innerText({ timeout: 4000 }).catch(() => null);
                if (text) {
                    await page.mouse.move(700, 300);
                    return text.trim();
                }
            }
            throw new Error('the status item showed no tooltip');
        }
        /** `hello frame=12 ticks=12 names=1` -> {greeting, frame, ticks} for each app line of the terminal. */
        const frames = (lines) =>
            lines
                .map((l) => /^(\w+) frame=(\d+) ticks=(\d+) names=\d+$/.exec(l.trim()))
                .filter(Boolean)
                .map((m) => ({ greeting: m[1], frame: Number(m[2]), ticks: Number(m[3]) }));
        const reload = (result.reload = {});
        const appBefore = appPids();
        const serverBefore = serverPids();
        if (appBefore.length !== 1 || serverBefore.length !== 1) {
            throw new Error(`before the reload: app pids ${appBefore}, servers ${serverBefore}`);
        }
        reload.appBefore = appBefore[0];
        reload.serverBefore = Number(serverBefore[0]);
        reload.tooltipBefore = await statusTooltip();
        await page.waitForTimeout(1000);
        await waitTerminal(/hello frame=\d+/, 5000); // scrolled to the end
        const before = frames(await terminalLines());
        reload.lastFrameBefore = Math.max(...before.map((f) => f.frame));
        reload.lastTicksBefore = Math.max(...before.map((f) => f.ticks));
        reload.statusBefore = await history();
        reload.logBefore = (await logText()).split('\n').filter((l) => /app (started|re-attached)/.test(l)).map((l) => l.trim());
        step(`before the reload: app ${reload.appBefore}, server ${reload.serverBefore}, last frame ${reload.lastFrameBefore}`);

        // Developer: Reload Window (what a user does; the same as the command workbench.action.reloadWindow).
        await page.evaluate(() => (window.__hotlineBeforeReload = true));
        await runCommand('Developer: Reload Window');
        const reloadedAt = Date.now();
        const reloadDeadline = Date.now() + 30000;
        while (await page.evaluate(() => window.__hotlineBeforeReload === true).catch(() => true)) {
            if (Date.now() > reloadDeadline) throw new Error('the window did not reload');
            await page.waitForTimeout(100);
        }
        await page.locator('.monaco-workbench').waitFor({ timeout: 30000 });
        await status.first().waitFor({ timeout: 30000 });
        await installRecorders();
        step('window reloaded');

        // Without Run: the status says running, with the same pid in its tooltip; one app, the same process.
        await waitStatus(/running/, 30000);
        reload.reattachMs = Date.now() - reloadedAt;
        reload.statusAfter = await history();
        reload.tooltipAfter = await statusTooltip();
        reload.appAfter = appPids();
        reload.serversAfter = serverPids().map(Number);
        step(`after the reload: ${reload.statusAfter.at(-1)} in ${reload.reattachMs} ms; app ${reload.appAfter}, servers ${reload.serversAfter}`);

        // The app's terminal is shown by itself, with the output from then on: Hotline's line, then the frames,
        // which go on from where they were (scrolled back to its first lines).
        const hotlineLine = /\[hotline\] app (started|re-attached)/;
        let fromHotlineLine = [];
        for (const until = Date.now() + 15000; Date.now() < until; await page.waitForTimeout(300)) {
            reload.terminalReattachedLine = await waitTerminal(hotlineLine, 15000, true);
            const lines = await terminalLines();
            fromHotlineLine = lines.slice(lines.findIndex((l) => hotlineLine.test(l)));
            if (frames(fromHotlineLine).length >= 3) break; // the first frames after it are out
        }
        reload.terminalTabs = await terminalTabs();
        reload.framesAfter = frames(fromHotlineLine).map((f) => f.frame);
        reload.ticksAfter = frames(fromHotlineLine).map((f) => f.ticks);
        step(`terminal after the reload: "${reload.terminalReattachedLine}", frames ${reload.framesAfter[0]}…${reload.framesAfter.at(-1)}`);
        reload.logAfter = (await logText()).split('\n').filter((l) => /app (started|re-attached)|re-attached to the running app/.test(l)).map((l) => l.trim());

        // The next edit patches the re-attached app.
        await page.keyboard.press('Control+P');
        await page.locator('.quick-input-widget input').waitFor({ timeout: 10000 });
        await page.keyboard.type('src/main.rs');
        await page.locator('.quick-input-list .monaco-list-row', { hasText: 'main.rs' }).first().waitFor({ timeout: 10000 });
        await page.keyboard.press('Enter');
        await greetingLine.waitFor({ timeout: 15000 });
        const hello = page.locator('.monaco-editor .view-line span span', { hasText: /^"hello"$/ }).first();
        await hello.waitFor({ timeout: 10000 });
        const helloBox = await hello.boundingBox();
        await page.mouse.dblclick(helloBox.x + helloBox.width / 2, helloBox.y + helloBox.height / 2);
        await page.keyboard.type(NEW_GREETING);
        await page.locator('.monaco-editor .view-line', { hasText: `"${NEW_GREETING}"` }).waitFor({ timeout: 5000 });
        since = await mark();
        await page.keyboard.press('Control+S');
        reload.patchedStatus = (await waitStatus(/patched/, 60000, since)).text;
        await runCommand('Hotline: Show App Output'); // (Show Log took the panel)
        reload.patchedLine = await waitTerminal(new RegExp(`^${NEW_GREETING} frame=\\d+`), 15000);
        step(`after the reload, edit + save: ${reload.patchedStatus}; "${reload.patchedLine.trim()}"`);

        // Past the reaper's grace (10 s after the old server left): the app still runs and counts on.
        while (Date.now() - reloadedAt < 13000) await page.waitForTimeout(250);
        await page.waitForTimeout(1000);
        // The terminal's end (a terminal scrolled up stays where it is).
        const screen = page.locator('.part.panel .terminal-wrapper.active .xterm-screen').first();
        const screenBox = await screen.boundingBox();
        await page.mouse.move(screenBox.x + screenBox.width / 2, screenBox.y + screenBox.height / 2);
        await page.mouse.wheel(0, 100000);
        await page.waitForTimeout(300);
        const late = frames(await terminalLines());
        reload.lastFrameLate = Math.max(...late.map((f) => f.frame));
        reload.appLate = appPids();
        reload.toasts = await toasts();
        step(`${((Date.now() - reloadedAt) / 1000).toFixed(1)} s after the reload: app ${reload.appLate}, frame ${reload.lastFrameLate}`);

        await greetingLine.click(); // out of the terminal, which Show App Output focused

        // Hotline: Restart Language Server keeps the app too: the new server re-attaches to it.
        const serverBeforeRestart = serverPids().map(Number);
        since = await mark();
        await runCommand('Hotline: Restart Language Server');
        const restarted = await waitStatus(/^Hotline$/, 20000, since);
        await waitStatus(/running/, 30000, restarted.index - 1);
        reload.serverRestart = {
            before: serverBeforeRestart,
            after: serverPids().map(Number),
            statuses: (await history()).slice(since),
            apps: appPids(),
            tooltip: await statusTooltip(),
        };
        step(`Restart Language Server: servers ${serverBeforeRestart} -> ${reload.serverRestart.after}, apps ${reload.serverRestart.apps}`);

        since = await mark();
        await runCommand('Hotline: Stop App');
        await waitStatus(/stopped/, 15000, since);
        reload.appAfterStop = appPids();
        step('Stop App');

        // Another Hotline, a terminal's `hotline run`, owns the crate: Run App asks (a warning with "Take over");
        // taking over, that one lets go and exits, and this window re-attaches to its app, the same process.
        const takeOver = (result.takeOver = {});
        cli = spawn(cfg.python ?? 'python3', ['-m', 'hotline', 'run', cfg.folder, '--json'], {
            env,
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let cliOut = '';
        let cliErr = '';
        cli.stdout.on('data', (d) => (cliOut += d));
        cli.stderr.on('data', (d) => (cliErr += d));
        const cliExit = new Promise((resolve) => cli.on('exit', (code, signal) => resolve({ code, signal })));
        const cliEvents = () =>
            cliOut.split('\n').filter((l) => l.startsWith('{')).map((l) => {
                try {
                    return JSON.parse(l);
                } catch {
                    return {};
                }
            });
        const cliDeadline = Date.now() + (cfg.buildTimeoutMs ?? 90000);
        let cliStarted;
        while (!(cliStarted = cliEvents().find((e) => e.event === 'app-started'))) {
            if (Date.now() > cliDeadline || cli.exitCode !== null) {
                throw new Error(`hotline run did not start the app: ${cliOut.slice(-2000)}\n${cliErr.slice(-2000)}`);
            }
            await page.waitForTimeout(200);
        }
        takeOver.cliPid = cli.pid;
        takeOver.cliAppPid = cliStarted.pid;
        step(`hotline run (pid ${cli.pid}) started the app: pid ${cliStarted.pid}`);

        const toastsFrom = await toastMark();
        since = await mark();
        await runCommand('Hotline: Run App');
        const busyToast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'already under another Hotline' }).first();
        await busyToast.waitFor({ timeout: 30000 });
        takeOver.message = (await busyToast.innerText()).replace(/\s+/g, ' ').trim();
        takeOver.buttons = await busyToast.locator('.monaco-button').allInnerTexts();
        takeOver.busyStatus = await statusText();
        step(`Run App: "${takeOver.message}" ${JSON.stringify(takeOver.buttons)}`);
        since = await mark();
        await busyToast.locator('.monaco-button', { hasText: 'Take over' }).first().click();
        await waitStatus(/running/, 30000, since);
        takeOver.cliExit = await Promise.race([cliExit, new Promise((r) => setTimeout(() => r(null), 10000))]);
        takeOver.cliSaid = cliOut.split('\n').concat(cliErr.split('\n')).filter((l) => /handed the app over/.test(l));
        takeOver.tooltip = await statusTooltip();
        takeOver.apps = appPids();
        takeOver.toasts = (await toasts()).slice(toastsFrom);
        takeOver.log = (await logText()).split('\n').filter((l) => /app (started|re-attached)/.test(l)).map((l) => l.trim());
        step(`Take over: ${await statusText()}; apps ${takeOver.apps}; hotline run exited ${JSON.stringify(takeOver.cliExit)}`);

        await greetingLine.click();
        since = await mark();
        await runCommand('Hotline: Stop App');
        await waitStatus(/stopped/, 15000, since);
        takeOver.appsAfterStop = appPids();
        step('Stop App');

        // A full build that fails: the language server's error notification carries rustc's rendered errors,
        // shown without their colour codes.
        const greetingNow = page.locator('.monaco-editor .view-line span span', { hasText: new RegExp(`^"${NEW_GREETING}"$`) }).first();
        await greetingNow.click();
        await page.keyboard.press('End');
        await page.keyboard.type(' 1');
        await page.keyboard.press('Control+S');
        await page.waitForTimeout(500);
        const failFrom = await toastMark();
        await runCommand('Hotline: Run App');
        const failToast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'fat build failed' }).first();
        await failToast.waitFor({ timeout: cfg.buildTimeoutMs ?? 90000 });
        result.buildFailure = {
            text: await failToast.evaluate((el) => el.textContent),
            toasts: (await toasts()).slice(failFrom),
        };
        step(`a failed full build: "${result.buildFailure.text.replace(/\s+/g, ' ').slice(0, 200)}"`);
        result.statusTexts = await history();
        result.ok = true;
        break flow;
    }

    // Edit the greeting in the editor: double-click the word inside "hello", type over it, save.
    const helloToken = page.locator('.monaco-editor .view-line span span', { hasText: /^"hello"$/ }).first();
    await helloToken.waitFor({ timeout: 10000 });
    const box = await helloToken.boundingBox();
    await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
    await page.keyboard.type(NEW_GREETING);
    await page.locator('.monaco-editor .view-line', { hasText: `"${NEW_GREETING}"` }).waitFor({ timeout: 5000 });
    since = await mark();
    await page.keyboard.press('Control+S');
    step('edited the greeting and saved');

    const patched = (await waitStatus(/patched/, 60000, since)).text;
    step(`status bar: ${patched}`);
    const lens = page.locator('.codelens-decoration', { hasText: 'patched in' }).first();
    await lens.waitFor({ timeout: 20000 });
    result.lens = (await lens.innerText()).replace(/\s+/g, " ").trim();
    // The lens sits right above `fn greeting`.
    const lensBox = await lens.boundingBox();
    const fnBox = await greetingLine.boundingBox();
    const dy = fnBox.y - lensBox.y;
    result.lensAboveFnGreeting = dy > 0 && dy < 2.5 * fnBox.height;
    if (!result.lensAboveFnGreeting) throw new Error(`the "patched in" lens is not above fn greeting (dy=${dy})`);
    step(`code lens: ${result.lens}`);

    // The app's new output in its terminal; the patch, which Python and which hotline package in the log.
    result.appLine = (await waitTerminal(new RegExp(`${NEW_GREETING} frame=`), 15000)).trim();
    step(`terminal shows the patched greeting: "${result.appLine}"`);
    // Back to the editor so the screenshot shows the lens, the status bar and the app's terminal.
    await greetingLine.click();
    await page.waitForTimeout(300);
    result.statusText = await statusText();
    result.screenshot = path.join(cfg.artifacts, 'vscode-e2e.png');
    await page.screenshot({ path: result.screenshot });
    step('screenshot');
    const log1 = await logText();
    result.logPatchedLine = log1.split('\n').find((l) => /patched in \d+ms: /.test(l)) ?? null;
    result.logPythonLine = log1.split('\n').find((l) => /language server's Python: /.test(l)) ?? null;
    result.logAppStarted = log1.split('\n').find((l) => /app started \(pid \d+\)/.test(l)) ?? null;
    if (!result.logPatchedLine || !result.logPythonLine) throw new Error(`the log lacks the patch or the Python line:\n${log1}`);
    step(`log: "${result.logPatchedLine.trim()}", "${result.logPythonLine.trim()}"`);

    // A compile error: the status says so (and Hotline), the log has it and rustc's error; fixing it patches.
    const greetingToken = page.locator('.monaco-editor .view-line span span', { hasText: new RegExp(`^"${NEW_GREETING}"$`) }).first();
    await greetingToken.click();
    await page.keyboard.press('End');
    await page.keyboard.type(' 1');
    since = await mark();
    await page.keyboard.press('Control+S');
    result.compileErrorStatus = (await waitStatus(/compile error/, 60000, since)).text;
    const log2 = await logText();
    result.logCompileError = log2.split('\n').filter((l) => /compile error \(1 error\)|src\/main\.rs:\d+:\d+: error/.test(l)).map((l) => l.trim());
    await greetingLine.click();
    await greetingToken.click();
    await page.keyboard.press('End');
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Backspace');
    since = await mark();
    await page.keyboard.press('Control+S');
    result.fixedStatus = (await waitStatus(/running|patched/, 60000, since)).text;
    step(`compile error: "${result.compileErrorStatus}", log ${JSON.stringify(result.logCompileError)}; fixed: "${result.fixedStatus}"`);


    // A click on the lens (the server's hotline.showLastPatch, through the client's middleware) and
    // Hotline: Show Last Patch both open the server's Markdown in a preview tab.
    const previewTab = page.locator('.tabs-container .tab', { hasText: 'Last Patch' }).first();
    await lens.locator('a', { hasText: 'patched in' }).first().click();
    await previewTab.waitFor({ timeout: 15000 });
    result.patchTab = (await previewTab.innerText()).replace(/\s+/g, ' ').trim();
    step(`lens click -> tab: ${result.patchTab}`);
    await previewTab.locator('.tab-actions .codicon-close, .tab-actions a').first().click();
    await previewTab.waitFor({ state: 'detached', timeout: 5000 });
    await runCommand('Hotline: Show Last Patch');
    await previewTab.waitFor({ timeout: 15000 });
    await page.waitForTimeout(500);
    await previewTab.locator('.tab-actions .codicon-close, .tab-actions a').first().click();
    await previewTab.waitFor({ state: 'detached', timeout: 5000 });
    await greetingLine.click();
    step('Show Last Patch -> preview tab');

    // Hotline: Restart App (Full Rebuild): building again, then running.
    since = await mark();
    await runCommand('Hotline: Restart App (Full Rebuild)');
    const rebuilding = await waitStatus(/building/, 15000, since);
    await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, rebuilding.index);
    step('Restart App: building -> running');

    // Hotline: Force Full Rebuild, with no change since the restart: a plain restart would find cargo's build
    // fresh and launch the same binary; a rebuild from clean (cargo clean -p) compiles and links it again.
    const deps = path.join(cfg.folder, 'target', 'hotline', 'debug', 'deps');
    const binaryMtimes = () =>
        fs.readdirSync(deps).filter((f) => /^counter-[0-9a-f]+$/.test(f)).map((f) => fs.statSync(path.join(deps, f)).mtimeMs);
    const appBefore = appPids();
    if (appBefore.length !== 1) throw new Error(`expected one app process before Force Full Rebuild, found ${appBefore}`);
    const builtBefore = Math.max(...binaryMtimes());
    since = await mark();
    await runCommand('Hotline: Force Full Rebuild');
    const forced = await waitStatus(/building/, 15000, since);
    await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, forced.index);
    const appAfter = appPids();
    const builtAfter = binaryMtimes();
    result.forceRebuild = {
        appBefore: appBefore[0],
        appAfter: appAfter,
        binaryRebuilt: builtAfter.length === 1 && builtAfter[0] > builtBefore,
    };
    if (appAfter.length !== 1 || appAfter[0] === appBefore[0]) throw new Error(`Force Full Rebuild: app pids ${appBefore} -> ${appAfter}`);
    step(`Force Full Rebuild: building -> running (app ${appBefore[0]} -> ${appAfter[0]}, binary rebuilt: ${result.forceRebuild.binaryRebuilt})`);

    // Run, save + patch, the lens, a compile error, Show Log/Last Patch, Restart, Force Full Rebuild: all
    // routine, no notification.
    result.routineToasts = await toasts();
    step(`notifications during routine work: ${JSON.stringify(result.routineToasts)}`);

    // Hotline: Attach Debugger with no debugger extension installed: a message with the app's pid and gdb.
    const appPid = appPids()[0];
    let toastsFrom = await toastMark();
    await runCommand('Hotline: Attach Debugger');
    const attachToast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'pid is' }).first();
    await attachToast.waitFor({ timeout: 10000 });
    result.attach = { appPid, message: (await attachToast.innerText()).replace(/\s+/g, ' ').trim() };
    result.attach.toasts = (await toasts()).slice(toastsFrom);
    step(`Attach Debugger (no debugger extension): "${result.attach.message}"`);
    await runCommand('Notifications: Clear All Notifications');
    await attachToast.waitFor({ state: 'detached', timeout: 5000 });

    // Turning on hotline.rustcWarnings applies at once: the same language server and the same app go on.
    // (In the Settings editor's User tab, as a user does.)
    const serverBefore = serverPids();
    await runCommand('Preferences: Open User Settings');
    await page.locator('.settings-editor .settings-header .suggest-input-container textarea, .settings-editor .settings-header input').first().waitFor({ timeout: 15000 });
    await page.keyboard.type('hotline.rustcWarnings');
    const warningsItem = page.locator('.settings-editor .setting-item-bool', { hasText: 'Rustc Warnings' }).first();
    await warningsItem.waitFor({ timeout: 10000 });
    await warningsItem.locator('.setting-value-checkbox').first().click();
    await page.waitForTimeout(500);
    const settingsTab = page.locator('.tabs-container .tab', { hasText: 'Settings' }).first();
    await settingsTab.locator('.tab-actions .codicon-close, .tab-actions a').first().click();
    await settingsTab.waitFor({ state: 'detached', timeout: 5000 });
    const liveLog = await (async () => {
        const deadline = Date.now() + 15000;
        while (Date.now() < deadline) {
            const text = await logText();
            const line = text.split('\n').find((l) => /settings changed \(.*\): applied at once/.test(l));
            if (line) return line.trim();
            await page.waitForTimeout(500);
        }
        return null;
    })();
    await page.waitForTimeout(1000);
    result.liveSetting = { log: liveLog, serverBefore, serverAfter: serverPids(), appBefore: appPid, appAfter: appPids() };
    step(`hotline.rustcWarnings turned on: ${JSON.stringify(result.liveSetting)}`);
    await greetingLine.click();

    // A crash: the edited greeting panics. The status says stopped (exit 101), a notification has the panic
    // and "Show Output", which shows the terminal with the panic.
    await greetingLine.click();
    await greetingToken.click();
    await page.keyboard.press('Home');
    await page.keyboard.press('Shift+End');
    await page.keyboard.press('Delete');
    await page.keyboard.type('panic!("hotline e2e crash")');
    await page.locator('.monaco-editor .view-line', { hasText: 'panic!("hotline e2e crash")' }).waitFor({ timeout: 5000 });
    toastsFrom = await toastMark();
    since = await mark();
    await page.keyboard.press('Control+S');
    const crashed = await waitStatus(/stopped/, 60000, since);
    const crashToast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'crashed' }).first();
    await crashToast.waitFor({ timeout: 10000 });
    result.crash = {
        status: crashed.text,
        message: (await crashToast.innerText()).replace(/\s+/g, ' ').trim(),
        buttons: await crashToast.locator('.monaco-button').allInnerTexts(),
    };
    // Away from the terminal first: the button must bring it back.
    await runCommand('Hotline: Show Log');
    await crashToast.locator('.monaco-button', { hasText: 'Show Output' }).first().click();
    result.crash.terminalLine = (await waitTerminal(/panicked at/, 10000, true)).trim();
    result.crash.terminalTabs = await terminalTabs();
    result.crash.toasts = (await toasts()).slice(toastsFrom);
    step(`crash: ${result.crash.status}; "${result.crash.message}" ${JSON.stringify(result.crash.buttons)}; Show Output -> "${result.crash.terminalLine}"`);
    // Out of the terminal, which Show Output focused: F1 typed into a terminal makes VS Code prompt about it.
    await greetingLine.click();
    await runCommand('Notifications: Clear All Notifications');

    // Fixing the code and saving relaunches the crashed app (the server does, as `hotline run` does); when
    // this server does not, Run App does.
    await page.locator('.monaco-editor .view-line span', { hasText: 'panic!' }).first().click();
    await page.keyboard.press('Home');
    await page.keyboard.press('Shift+End');
    await page.keyboard.press('Delete');
    await page.keyboard.type(`"${NEW_GREETING}"`);
    toastsFrom = await toastMark();
    since = await mark();
    await page.keyboard.press('Control+S');
    const relaunch = await waitStatus(/building/, 5000, since).catch(() => undefined);
    result.relaunchedOnSave = relaunch !== undefined;
    if (!relaunch) {
        await runCommand('Hotline: Run App');
    }
    await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, relaunch?.index ?? since);
    await waitTerminal(new RegExp(`${NEW_GREETING} frame=`), 15000);
    step(`the fixed app runs again (relaunched by the save: ${result.relaunchedOnSave})`);

    since = await mark();
    await runCommand('Hotline: Stop App');
    await waitStatus(/stopped/, 15000, since);
    result.afterCrashToasts = (await toasts()).slice(toastsFrom);
    step('status bar: stopped');
    const toastsBeforeServerCrashes = (await toasts()).length;

    // Crash the language server: the extension restarts it (status back to idle, a new process).
    const before = serverPids();
    if (before.length !== 1) throw new Error(`expected one language server for ${cfg.folder}, found ${before}`);
    process.kill(Number(before[0]), 'SIGKILL');
    const deadline = Date.now() + 20000;
    let after = [];
    while (Date.now() < deadline) {
        after = serverPids().filter((p) => p !== before[0]);
        if (after.length === 1 && /^Hotline$/.test(await statusText().catch(() => ''))) break;
        await page.waitForTimeout(200);
    }
    result.statusTexts = await history();
    if (after.length !== 1) throw new Error(`the language server was not restarted after a crash (pids ${after})`);
    result.restartedServer = { killed: Number(before[0]), restarted: Number(after[0]) };
    await waitStatus(/^Hotline$/, 5000);
    step('language server restarted after a crash');

    // The restarted server works: status notifications and build progress reach the status bar again.
    since = await mark();
    await runCommand('Hotline: Run App');
    const rebuilt = await waitStatus(/building \d+\/\d+/, 30000, since);
    await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, rebuilt.index);
    since = await mark();
    await runCommand('Hotline: Stop App');
    await waitStatus(/stopped/, 15000, since);
    result.statusTexts = await history();
    step('after the restart: Run App -> building n/m -> running -> Stop App');

    // Crash it until the restart budget is spent: MAX_RESTARTS restarts in the window (one above), then the
    // next crash is not restarted: "server stopped" and one error notification saying so.
    const maxRestarts = cfg.maxRestarts ?? 5;
    result.crashRestarts = [result.restartedServer.restarted];
    for (let crash = 2; crash <= maxRestarts + 1; crash++) {
        const [victim] = serverPids();
        process.kill(Number(victim), 'SIGKILL');
        const until = Date.now() + (crash <= maxRestarts ? 20000 : 5000);
        let next = [];
        while (Date.now() < until) {
            next = serverPids().filter((p) => p !== victim);
            if (next.length === 1 && /^Hotline$/.test(await statusText().catch(() => ''))) break;
            await page.waitForTimeout(200);
        }
        if (crash <= maxRestarts) {
            if (next.length !== 1) throw new Error(`crash ${crash}: the language server was not restarted (pids ${next})`);
            result.crashRestarts.push(Number(next[0]));
        } else {
            result.afterLastCrash = { servers: next.map(Number), statusText: await statusText() };
        }
    }
    const giveUp = page.locator('.notifications-toasts .notification-list-item', { hasText: 'will not be restarted' }).first();
    await giveUp.waitFor({ timeout: 10000 });
    result.giveUpNotification = (await giveUp.innerText()).replace(/\s+/g, ' ').trim();
    result.giveUpToasts = (await toasts()).slice(toastsBeforeServerCrashes);
    step(`crash ${maxRestarts + 1}: not restarted; ${result.afterLastCrash.statusText}; "${result.giveUpNotification}"`);

    // Hotline: Restart Language Server brings it back, with a fresh budget, and it runs the app.
    await runCommand('Hotline: Restart Language Server');
    const restartDeadline = Date.now() + 20000;
    let revived = [];
    while (Date.now() < restartDeadline) {
        revived = serverPids();
        if (revived.length === 1 && /^Hotline$/.test(await statusText().catch(() => ''))) break;
        await page.waitForTimeout(200);
    }
    if (revived.length !== 1) throw new Error(`Restart Language Server: servers ${revived}`);
    result.revivedServer = Number(revived[0]);
    since = await mark();
    await runCommand('Hotline: Run App');
    await waitStatus(/running/, cfg.buildTimeoutMs ?? 90000, since);
    since = await mark();
    await runCommand('Hotline: Stop App');
    await waitStatus(/stopped/, 15000, since);
    result.statusTexts = await history();
    result.toasts = await toasts();
    step(`Restart Language Server: server ${result.revivedServer}, Run App -> running -> Stop App`);
    result.ok = true;
    }
} catch (err) {
    result.error = String(err?.stack ?? err);
    if (page) {
        result.statusTexts = await page.evaluate(() => window.__hotlineStatus ?? []).catch(() => result.statusTexts);
        result.toasts = await page.evaluate(() => (window.__hotlineToasts ?? []).map((t) => t.text)).catch(() => result.toasts);
        const shot = path.join(cfg.artifacts, `vscode-e2e-${SCENARIO}-failure.png`);
        await page.screenshot({ path: shot }).catch(() => {});
        result.failureScreenshot = shot;
    }
} finally {
    await context?.close().catch(() => {});
    if (server?.pid) {
        try { process.kill(-server.pid, 'SIGTERM'); } catch {}
        await new Promise((r) => setTimeout(r, 500));
        try { process.kill(-server.pid, 'SIGKILL'); } catch {}
    }
    if (cli && cli.exitCode === null && cli.signalCode === null) {
        try { cli.kill('SIGKILL'); } catch {}
    }
    // An app of this crate left running (a failed run; the killed server leaves it for re-attaching): stopped.
    const leftover = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
        try {
            return fs.readlinkSync(`/proc/${pid}/exe`).startsWith(path.join(cfg.folder, 'target', 'hotline', 'run') + '/');
        } catch {
            return false;
        }
    });
    for (const pid of leftover) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch {}
    }
    if (leftover.length) result.leftoverApps = leftover.map(Number);
    fs.writeFileSync(path.join(cfg.artifacts, `code-server-${SCENARIO}.log`), serverLog);
    result.totalMs = Date.now() - t0;
    console.log(JSON.stringify(result));
    process.exit(result.ok ? 0 : 1);
}
