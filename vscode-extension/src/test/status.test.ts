import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { formatMs, formatStatus, isCrash, isStatusParams, plainMessage, RuntimeMode, STATES, StatusParams, stripAnsi, summarize } from '../common/statusModel';

test('formatMs', () => {
    assert.equal(formatMs(142), '142ms');
    assert.equal(formatMs(141.6), '142ms');
    assert.equal(formatMs(0), '0ms');
    assert.equal(formatMs(9999), '9999ms');
    assert.equal(formatMs(15300), '15.3s');
    assert.equal(formatMs(65000), '1m 5s');
    assert.equal(formatMs(-1), '');
});

test('patched shows the zap, the time and the functions', () => {
    const v = formatStatus({ state: 'patched', ms: 142.3, functions: ['counter::greeting'] });
    assert.equal(v.text, '$(zap) Hotline: patched 142ms');
    assert.match(v.tooltip, /patched 1 function in 142ms/);
    assert.match(v.tooltip, /counter::greeting/);
    assert.equal(v.severity, 'normal');
    assert.equal(v.command, 'hotline.openLastPatch');
});

test('patched with old code still running (HL1012) warns, and says where in the tooltip', () => {
    const message = 'app::worker still runs old code on thread worker-1 (HL1012)';
    const v = formatStatus({ state: 'patched', ms: 12, functions: ['app::worker'], message });
    assert.equal(v.text, '$(zap) Hotline: patched 12ms $(warning)');
    assert.match(v.tooltip, /app::worker still runs old code on thread worker-1 \(HL1012\)/);
    assert.equal(v.severity, 'warning');
    const landed = formatStatus({ state: 'patched', message: 'entry jumps landed: app::label now run the new code' });
    assert.equal(landed.severity, 'normal');
    assert.match(landed.tooltip, /entry jumps landed/);
});

test('patched with an edited function not called since the patch (HL1013) warns quietly, in the item only', () => {
    const message = 'app::settings not called since the patch (HL1013): restart to apply';
    const v = formatStatus({ state: 'patched', ms: 62, functions: ['app::settings'], message });
    assert.equal(v.text, '$(zap) Hotline: patched 62ms $(warning)');
    assert.match(v.tooltip, /app::settings not called since the patch \(HL1013\): restart to apply/);
    assert.equal(v.severity, 'warning');
});

test('building spins and shows progress', () => {
    assert.equal(formatStatus({ state: 'building', message: 'fat build' }).text, '$(sync~spin) Hotline: building');
    const v = formatStatus({ state: 'building' }, { message: '12/40 serde', percentage: 30 });
    assert.equal(v.text, '$(sync~spin) Hotline: building 12/40');
    assert.match(v.tooltip, /30%/);
    assert.match(v.tooltip, /12\/40 serde/);
});

test('running, idle, patching', () => {
    assert.equal(formatStatus({ state: 'running' }).text, '$(play) Hotline: running');
    assert.equal(formatStatus({ state: 'running' }).command, 'hotline.showAppOutput');
    assert.equal(formatStatus({ state: 'idle' }).text, '$(flame) Hotline');
    assert.equal(formatStatus({ state: 'patching' }).text, '$(sync~spin) Hotline: patching');
    assert.match(formatStatus({ state: 'running', message: 'no code change', ms: 30 }).tooltip, /no code change/);
});

test('an injected runtime is shown in the text, either mode in the tooltip', () => {
    const injected = formatStatus({ state: 'running', runtime: 'injected' });
    assert.equal(injected.text, '$(play) Hotline: running · injected');
    assert.match(injected.tooltip, /Runtime injected: .*no hotline::call safe points/);
    const patched = formatStatus({ state: 'patched', ms: 80, functions: ['plain::greeting'], runtime: 'injected' });
    assert.equal(patched.text, '$(zap) Hotline: patched 80ms · injected');
    const linked = formatStatus({ state: 'running', runtime: 'linked' });
    assert.equal(linked.text, '$(play) Hotline: running');
    assert.match(linked.tooltip, /Runtime linked: hotline::call safe points and on_patch are available/);
});

test('the extension knows exactly the runtime modes of the schema', () => {
    const dir = [path.join(__dirname, '..', '..', '..', 'schemas'), path.join(__dirname, '..', '..', 'schemas')].find((d) =>
        fs.existsSync(path.join(d, 'lsp-status.schema.json')),
    );
    assert.ok(dir);
    const schema = JSON.parse(fs.readFileSync(path.join(dir, 'lsp-status.schema.json'), 'utf8'));
    const modes: RuntimeMode[] = schema.properties.runtime.enum;
    assert.deepEqual([...modes].sort(), ['injected', 'linked']);
    for (const runtime of modes) {
        assert.ok(formatStatus({ state: 'running', runtime }).tooltip.includes(`Runtime ${runtime}`));
    }
});

test('error is red, says Hotline, and clicks to the log', () => {
    const v = formatStatus({ state: 'error', message: 'compile error (2 errors)' });
    assert.equal(v.text, '$(error) Hotline: compile error (2 errors)');
    assert.equal(v.severity, 'error');
    assert.equal(v.command, 'hotline.showOutput');
    assert.equal(formatStatus({ state: 'error' }).text, '$(error) Hotline: error');
    // The server's own "Hotline: ..." messages are not shown as "Hotline: Hotline: ...".
    assert.equal(formatStatus({ state: 'error', message: 'Hotline: invalid settings: x' }).text, '$(error) Hotline: invalid settings: x');
});

test("rustc's colours are taken out of an error message", () => {
    const v = formatStatus({ state: 'error', message: 'the fat build failed: \x1b[1m\x1b[91merror[E0765]\x1b[0m\x1b[1m: unterminated\x1b[0m' });
    assert.equal(v.text, '$(error) Hotline: the fat build failed: error[E0765]…');
    assert.match(v.tooltip, /^Hotline: the fat build failed: error\[E0765\]: unterminated\n/);
});

test('a long refusal is summarised in the status text, whole in the tooltip', () => {
    const message = 'patch refused (HL1098): the patch region is full: restart the app';
    const v = formatStatus({ state: 'error', message });
    assert.equal(v.text, '$(error) Hotline: patch refused (HL1098): the patch…');
    assert.ok(v.text.length <= '$(error) Hotline: '.length + 40);
    assert.match(v.tooltip, new RegExp(`^Hotline: ${message.replace(/[()]/g, '\\$&')}\n`));
});

test('summarize keeps short text, cuts long text at a word with an ellipsis, and marks dropped lines', () => {
    assert.equal(summarize('compile error (1 error)'), 'compile error (1 error)');
    assert.equal(summarize('x'.repeat(40)), 'x'.repeat(40));
    assert.equal(summarize('x'.repeat(41)), `${'x'.repeat(39)}…`);
    assert.equal(summarize('patch refused (HL1002): layout change of app::Particle'), 'patch refused (HL1002): layout change…');
    assert.equal(summarize('the build failed\nerror[E0308]: mismatched types'), 'the build failed…');
    assert.equal(summarize('  Hotline:  two   spaces '), 'two spaces');
    for (const text of ['a '.repeat(100), 'word'.repeat(30), 'patch refused (static-layout): '.padEnd(200, 'x')]) {
        assert.ok(summarize(text).length <= 40, text);
    }
});

test('the pid is in the tooltip while the app runs', () => {
    assert.match(formatStatus({ state: 'running' }, undefined, 4242).tooltip, /App pid 4242: "Hotline: Attach Debugger"/);
    assert.match(formatStatus({ state: 'patched', ms: 5, pid: 77 }).tooltip, /App pid 77/);
    assert.match(formatStatus({ state: 'error', message: 'compile error (1 error)' }, undefined, 9).tooltip, /App pid 9/);
    assert.doesNotMatch(formatStatus({ state: 'running' }).tooltip, /pid/);
    assert.doesNotMatch(formatStatus({ state: 'stopped', exitCode: 1 }, undefined, 9).tooltip, /pid/);
});

test('every state says Hotline in its text', () => {
    for (const state of STATES) {
        assert.match(formatStatus({ state, message: 'x'.repeat(100) }).text, /(^|\) )Hotline\b/, state);
    }
});

test('stopped: the exit code or signal shown when the app crashed', () => {
    assert.equal(formatStatus({ state: 'stopped', exitCode: null, message: 'stopped' }).text, '$(debug-stop) Hotline: stopped');
    assert.equal(formatStatus({ state: 'stopped', exitCode: 0 }).severity, 'normal');
    const v = formatStatus({ state: 'stopped', exitCode: 101, message: 'exited with code 101' });
    assert.equal(v.text, '$(debug-stop) Hotline: stopped (exit 101)');
    assert.equal(v.severity, 'warning');
    assert.match(v.tooltip, /exited with code 101/);
    assert.equal(formatStatus({ state: 'stopped', exitCode: null, message: 'killed by signal 11' }).text, '$(debug-stop) Hotline: stopped (signal 11)');
    assert.equal(formatStatus({ state: 'stopped', exitCode: null, signal: 6 }).text, '$(debug-stop) Hotline: stopped (signal 6)');
});

test('a crash is a stop with a non-zero exit code or a signal, not a user stop or exit 0', () => {
    assert.ok(isCrash({ state: 'stopped', exitCode: 101, message: 'exited with code 101' }));
    assert.ok(isCrash({ state: 'stopped', exitCode: null, message: 'killed by signal 11' }));
    assert.ok(isCrash({ state: 'stopped', exitCode: null, signal: 9 }));
    assert.ok(!isCrash({ state: 'stopped', exitCode: null, message: 'stopped' }));
    assert.ok(!isCrash({ state: 'stopped', exitCode: 0, message: 'exited with code 0' }));
    assert.ok(!isCrash({ state: 'error', exitCode: 1 }));
});

/** The states schemas/lsp-status.schema.json allows: the list the server is checked against. */
function schemaStates(): string[] {
    // out/test/status.test.js -> the repository's schemas/ (three levels up from out/test, two from src/test).
    const candidates = [path.join(__dirname, '..', '..', '..', 'schemas'), path.join(__dirname, '..', '..', 'schemas')];
    const dir = candidates.find((d) => fs.existsSync(path.join(d, 'lsp-status.schema.json')));
    assert.ok(dir, `schemas/lsp-status.schema.json not found from ${__dirname}`);
    const schema = JSON.parse(fs.readFileSync(path.join(dir, 'lsp-status.schema.json'), 'utf8'));
    const states: unknown = schema.properties.state.enum;
    assert.ok(Array.isArray(states) && states.length > 0 && states.every((s) => typeof s === 'string'));
    return states as string[];
}

test('the extension knows exactly the states of the schema', () => {
    assert.deepEqual([...STATES].sort(), schemaStates().sort());
});

test('every state of the schema is formatted', () => {
    for (const state of schemaStates()) {
        assert.ok(isStatusParams({ state }), state);
        const v = formatStatus({ state } as StatusParams);
        assert.ok(v.text.length > 0, state);
        assert.ok(v.command.startsWith('hotline.'), state);
    }
});

test('isStatusParams rejects junk', () => {
    assert.ok(isStatusParams({ state: 'patched', ms: 1 }));
    assert.ok(!isStatusParams({ state: 'exploded' }));
    assert.ok(!isStatusParams(null));
    assert.ok(!isStatusParams('running'));
});

test("a server message shown in a notification or the log has no ANSI codes (a failed build's rustc colours)", () => {
    const message =
        'Hotline: the fat build failed:\n\x1b[0m\x1b[1m\x1b[38;5;9merror[E0765]\x1b[0m\x1b[0m\x1b[1m: unterminated double quote string\x1b[0m  \n' +
        '\x1b[0m \x1b[0m\x1b[0m\x1b[1m\x1b[38;5;12m--> \x1b[0m\x1b[0msrc/main.rs:12:5\x1b[0m\r\n';
    assert.equal(
        plainMessage(message),
        'Hotline: the fat build failed:\nerror[E0765]: unterminated double quote string\n --> src/main.rs:12:5',
    );
    assert.equal(plainMessage('Hotline: counter is already under another Hotline, pid 1'), 'Hotline: counter is already under another Hotline, pid 1');
});

test('stripAnsi takes out CSI, OSC (hyperlinks) and the other escapes, and nothing else', () => {
    assert.equal(stripAnsi('\x1b[1;31merror\x1b[0m: x'), 'error: x');
    assert.equal(stripAnsi('\x1b]8;;file:///src/main.rs\x1b\\src/main.rs\x1b]8;;\x1b\\:3'), 'src/main.rs:3');
    assert.equal(stripAnsi('\x1b]0;title\x07text'), 'text');
    assert.equal(stripAnsi('a\x1b(Bb\x1bMc'), 'abc'); // ESC ( B: a character set; ESC M: reverse index
    assert.equal(stripAnsi('[hotline] frame=1 [x] 100%'), '[hotline] frame=1 [x] 100%');
});
