import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLIENT_SETTING_KEYS, LIVE_SETTING_KEYS, pythonPathSetting, SECTION, SERVER_SETTING_KEYS, settingsChangeAction, substitute, toInitializationOptions } from '../common/settings';

// out/test/settings.test.js -> vscode-extension/ and the repository's schemas/
const EXT = path.resolve(__dirname, '..', '..');
const SCHEMA = path.resolve(EXT, '..', 'schemas', 'settings.schema.json');

type Json = Record<string, unknown>;
const pkg = JSON.parse(fs.readFileSync(path.join(EXT, 'package.json'), 'utf8')) as Json;
const schema = JSON.parse(fs.readFileSync(SCHEMA, 'utf8')) as { properties: Record<string, Json> };
const contributed = ((pkg.contributes as Json).configuration as { properties: Record<string, Json> }).properties;

test('package.json contributes exactly the schema settings (plus the client-only ones)', () => {
    const expected = [...Object.keys(schema.properties), ...CLIENT_SETTING_KEYS].map((k) => `${SECTION}.${k}`).sort();
    assert.deepEqual(Object.keys(contributed).sort(), expected);
    assert.deepEqual([...SERVER_SETTING_KEYS].sort(), Object.keys(schema.properties).sort());
});

test('types, defaults and constraints agree with schemas/settings.schema.json', () => {
    for (const [key, spec] of Object.entries(schema.properties)) {
        const mine = contributed[`${SECTION}.${key}`];
        // (The schema's minLength is not contributed, so the Settings editor does not flag the empty default;
        // toInitializationOptions leaves empty strings out instead, tested below.)
        for (const field of ['type', 'default', 'items', 'additionalProperties', 'enum']) {
            assert.deepEqual(mine[field], spec[field], `hotline.${key}: ${field}`);
        }
        assert.ok(typeof (mine.markdownDescription ?? mine.description) === 'string', `hotline.${key}: description`);
    }
});

test('every command is contributed under the Hotline category and activation covers Rust', () => {
    const commands = (pkg.contributes as Json).commands as { command: string; title: string; category: string }[];
    const ids = commands.map((c) => c.command);
    for (const id of ['hotline.runApp', 'hotline.stopApp', 'hotline.restartApp', 'hotline.forceRebuild', 'hotline.openLastPatch', 'hotline.showOutput', 'hotline.showAppOutput', 'hotline.attachDebugger']) {
        assert.ok(ids.includes(id), id);
    }
    // The server's own command ids are registered by vscode-languageclient; contributing them would clash.
    for (const id of ['hotline.run', 'hotline.stop', 'hotline.restart', 'hotline.rebuild', 'hotline.showLastPatch']) {
        assert.ok(!ids.includes(id), id);
    }
    assert.ok(commands.every((c) => c.category === 'Hotline'));
    assert.deepEqual(pkg.activationEvents, ['workspaceContains:**/Cargo.toml', 'onLanguage:rust']);
});

const config = (values: Record<string, unknown>) => (key: string) => values[key];

test('defaults give empty initializationOptions (the server uses its own defaults)', () => {
    assert.deepEqual(toInitializationOptions(config({ crate: '', bin: null, appArgs: [], patchOnSave: true, env: {} })), {
        appArgs: [],
        patchOnSave: true,
        env: {},
    });
    assert.deepEqual(toInitializationOptions(config({})), {});
});

test('values are mapped, empty and ill-typed ones left out', () => {
    const got = toInitializationOptions(
        config({
            crate: ' ${workspaceFolder}/app ',
            bin: 'server',
            appArgs: ['--port', 8080, '${env:PORT}'],
            patchOnSave: false,
            env: { RUST_LOG: 'debug', BAD: 1 },
            pythonPath: '/x/python',
        }),
        { workspaceFolder: '/ws', env: { PORT: '9000' } },
    );
    assert.deepEqual(got, { crate: '/ws/app', bin: 'server', appArgs: ['--port', '9000'], patchOnSave: false, env: { RUST_LOG: 'debug' } });
    assert.deepEqual(toInitializationOptions(config({ bin: '  ', patchOnSave: 'yes', env: ['A=1'], appArgs: 'x' })), {});
});

test('pythonPath and substitutions', () => {
    assert.equal(pythonPathSetting(config({ pythonPath: '' })), undefined);
    assert.equal(pythonPathSetting(config({})), undefined);
    assert.equal(pythonPathSetting(config({ pythonPath: '${userHome}/venv/bin/python' }), { userHome: '/home/me' }), '/home/me/venv/bin/python');
    assert.equal(substitute('${workspaceFolder}/x', {}), '${workspaceFolder}/x');
    assert.equal(substitute('${env:NOPE}', { env: {} }), '');
});

test('entryJumps: false reaches the server, the default (true) is sent as true, an unset or ill-typed one is left out', () => {
    // What `workspace.getConfiguration('hotline').get(key)` returns: the user's value, else package.json's default.
    const vscodeConfig = (user: Record<string, unknown>) => (key: string) =>
        key in user ? user[key] : contributed[`${SECTION}.${key}`]?.default;
    assert.equal(contributed['hotline.entryJumps'].default, true);
    assert.equal(toInitializationOptions(vscodeConfig({ entryJumps: false })).entryJumps, false);
    assert.equal(toInitializationOptions(vscodeConfig({})).entryJumps, true);
    assert.equal(toInitializationOptions(vscodeConfig({ entryJumps: true })).entryJumps, true);
    // Absent: the server's default (on).
    assert.ok(!('entryJumps' in toInitializationOptions(config({}))));
    assert.ok(!('entryJumps' in toInitializationOptions(config({ entryJumps: 'off' }))));
    // A launch setting like linker: changing it restarts the language server (extension.ts watches these keys).
    assert.ok(SERVER_SETTING_KEYS.includes('entryJumps') && SERVER_SETTING_KEYS.includes('linker'));
});

test('hotline.pythonPath can be set in User settings (window scope, not machine)', () => {
    // A machine or machine-overridable setting is listed under Remote, not User, in a remote window
    // (code-server, Remote-SSH): users did not find it. window: User, Remote and Workspace settings.
    assert.equal(contributed['hotline.pythonPath'].scope, 'window');
});

test('hotline.rustcWarnings is off by default and passed to the server', () => {
    assert.equal(contributed['hotline.rustcWarnings'].default, false);
    assert.deepEqual(toInitializationOptions(config({ rustcWarnings: true })), { rustcWarnings: true });
    assert.deepEqual(toInitializationOptions(config({ rustcWarnings: false })), { rustcWarnings: false });
    assert.deepEqual(toInitializationOptions(config({ rustcWarnings: 'yes' })), {});
});

test("the README's settings table lists every contributed setting with its default", () => {
    const readme = fs.readFileSync(path.join(EXT, 'README.md'), 'utf8');
    const rows = new Map(
        [...readme.matchAll(/^\| `(hotline\.[A-Za-z.]+)` \| ([^|]+) \|/gm)].map((m) => [m[1], m[2].trim()] as const),
    );
    assert.deepEqual([...rows.keys()].sort(), Object.keys(contributed).sort());
    for (const [key, spec] of Object.entries(contributed)) {
        if (spec.default !== undefined) {
            assert.equal(rows.get(key), `\`${JSON.stringify(spec.default)}\``, key);
        }
    }
});

test('changing rustcWarnings, patchOnSave, allowLayoutChanges or the speculative settings notifies the server; others restart it', () => {
    const only = (...keys: string[]) => (key: string) => keys.includes(key);
    assert.deepEqual([...LIVE_SETTING_KEYS].sort(), [
        'allowLayoutChanges', 'patchOnSave', 'rustcWarnings', 'speculativeBuilds', 'speculativeDelayMs',
        'speculativeDiagnostics',
    ]);
    assert.equal(settingsChangeAction(only('speculativeDelayMs')), 'notify');
    assert.equal(settingsChangeAction(only('rustcWarnings')), 'notify');
    assert.equal(settingsChangeAction(only('patchOnSave', 'allowLayoutChanges')), 'notify');
    assert.equal(settingsChangeAction(only('rustcWarnings', 'features')), 'restart');
    assert.equal(settingsChangeAction(only('entryJumps')), 'restart');
    assert.equal(settingsChangeAction(only('pythonPath')), 'restart');
    assert.equal(settingsChangeAction(only('trace.server')), 'none');
});
