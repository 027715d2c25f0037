import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { formatMs, formatOutputLine, formatStatus, isStatusParams, RuntimeMode, STATES, StatusParams } from '../common/statusModel';

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
    assert.equal(v.text, '$(zap) patched 142ms');
    assert.match(v.tooltip, /patched 1 function in 142ms/);
    assert.match(v.tooltip, /counter::greeting/);
    assert.equal(v.severity, 'normal');
    assert.equal(v.command, 'hotline.openLastPatch');
});

test('building spins and shows progress', () => {
    assert.equal(formatStatus({ state: 'building', message: 'fat build' }).text, '$(sync~spin) building');
    const v = formatStatus({ state: 'building' }, { message: '12/40 serde', percentage: 30 });
    assert.equal(v.text, '$(sync~spin) building 12/40');
    assert.match(v.tooltip, /30%/);
    assert.match(v.tooltip, /12\/40 serde/);
});

test('running, idle, patching', () => {
    assert.equal(formatStatus({ state: 'running' }).text, '$(play) running');
    assert.equal(formatStatus({ state: 'idle' }).text, '$(flame) Hotline');
    assert.equal(formatStatus({ state: 'patching' }).text, '$(sync~spin) patching');
    assert.match(formatStatus({ state: 'running', message: 'no code change', ms: 30 }).tooltip, /no code change/);
});

test('an injected runtime is shown in the text, either mode in the tooltip', () => {
    const injected = formatStatus({ state: 'running', runtime: 'injected' });
    assert.equal(injected.text, '$(play) running · injected');
    assert.match(injected.tooltip, /Runtime injected: .*no hotline::call safe points/);
    const patched = formatStatus({ state: 'patched', ms: 80, functions: ['plain::greeting'], runtime: 'injected' });
    assert.equal(patched.text, '$(zap) patched 80ms · injected');
    const linked = formatStatus({ state: 'running', runtime: 'linked' });
    assert.equal(linked.text, '$(play) running');
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

test('error is red, truncated, and clicks to the output', () => {
    const v = formatStatus({ state: 'error', message: 'compile error (2 errors)' });
    assert.equal(v.text, '$(error) compile error (2 errors)');
    assert.equal(v.severity, 'error');
    assert.equal(v.command, 'hotline.showOutput');
    const long = formatStatus({ state: 'error', message: 'patch refused (static-layout): '.padEnd(200, 'x') });
    assert.ok(long.text.length <= '$(error) '.length + 40);
    assert.ok(long.text.endsWith('…'));
    assert.equal(formatStatus({ state: 'error' }).text, '$(error) error');
});

test('stopped: exit code shown when non-zero', () => {
    assert.equal(formatStatus({ state: 'stopped', exitCode: null, message: 'stopped' }).text, '$(debug-stop) stopped');
    assert.equal(formatStatus({ state: 'stopped', exitCode: 0 }).severity, 'normal');
    const v = formatStatus({ state: 'stopped', exitCode: 101, message: 'exited with code 101' });
    assert.equal(v.text, '$(debug-stop) stopped (exit 101)');
    assert.equal(v.severity, 'warning');
    assert.match(v.tooltip, /exited with code 101/);
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

test('output lines', () => {
    assert.equal(formatOutputLine({ stream: 'stdout', line: 'hello frame=1' }), 'hello frame=1');
    assert.equal(formatOutputLine({ stream: 'stderr', line: 'oops' }), '[stderr] oops');
});
