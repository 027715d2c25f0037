import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { describePython, findPython, isExecutableFile, parseProbeOutput, probeImportHotline, PROBE_SCRIPT, whichOnPath } from '../common/python';

const exists = (files: string[]) => (p: string) => files.includes(p);

test('whichOnPath takes the first directory that has it', () => {
    const isExe = exists(['/b/python3', '/c/python3']);
    assert.equal(whichOnPath('python3', '/a:/b:/c', isExe, 'linux'), '/b/python3');
    assert.equal(whichOnPath('python', '/a:/b:/c', isExe, 'linux'), undefined);
    assert.equal(whichOnPath('python3', undefined, isExe, 'linux'), undefined);
    assert.equal(whichOnPath('python3', '::/c', isExe, 'linux'), '/c/python3');
});

test('the configured interpreter is used, and only it', async () => {
    const probed: string[] = [];
    const ok = await findPython({
        configured: '/venv/bin/python',
        pathEnv: '/usr/bin',
        isExecutable: () => true,
        probe: async (p) => (probed.push(p), { ok: true }),
    });
    assert.deepEqual(ok, { python: '/venv/bin/python', tried: ['/venv/bin/python'] });
    assert.deepEqual(probed, ['/venv/bin/python']);

    const bad = await findPython({
        configured: '/venv/bin/python',
        pathEnv: '/usr/bin',
        isExecutable: () => true,
        probe: async () => ({ ok: false, detail: "ModuleNotFoundError: No module named 'hotline'" }),
        repoHint: '/src/hotline',
    });
    assert.ok('error' in bad);
    assert.match(bad.error, /hotline\.pythonPath/);
    assert.match(bad.error, /No module named 'hotline'/);
    assert.match(bad.error, /pip install -e \/src\/hotline/);
});

test('python3 before python; the first that imports hotline wins', async () => {
    const choice = await findPython({
        pathEnv: '/usr/bin:/opt/bin',
        isExecutable: exists(['/usr/bin/python3', '/opt/bin/python']),
        probe: async (p) => ({ ok: p === '/opt/bin/python', detail: 'No module named hotline' }),
        platform: 'linux',
    });
    assert.deepEqual(choice, {
        python: '/opt/bin/python',
        tried: ['/usr/bin/python3 (No module named hotline)', '/opt/bin/python'],
    });
});

test('none found: an error that says how to fix it', async () => {
    const choice = await findPython({
        pathEnv: '/usr/bin',
        isExecutable: exists(['/usr/bin/python3']),
        probe: async () => ({ ok: false, detail: "No module named 'hotline'" }),
        platform: 'linux',
    });
    assert.ok('error' in choice);
    assert.match(choice.error, /\/usr\/bin\/python3 \(No module named 'hotline'\)/);
    assert.match(choice.error, /python \(not on PATH\)/);
    assert.match(choice.error, /pip install -e/);
    assert.match(choice.error, /hotline\.pythonPath/);
});

test('the real probe: a failing and a succeeding interpreter', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-py-'));
    const good = path.join(dir, 'good');
    const bad = path.join(dir, 'bad');
    fs.writeFileSync(good, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    fs.writeFileSync(bad, "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'hotline'\" >&2\nexit 1\n", { mode: 0o755 });
    assert.ok(isExecutableFile(good));
    assert.ok(!isExecutableFile(dir));
    assert.deepEqual(await probeImportHotline(good), { ok: true });
    assert.deepEqual(await probeImportHotline(bad), { ok: false, detail: "ModuleNotFoundError: No module named 'hotline'" });
    const missing = await probeImportHotline(path.join(dir, 'nope'));
    assert.equal(missing.ok, false);
    assert.match(missing.detail ?? '', /ENOENT/);
    fs.rmSync(dir, { recursive: true, force: true });
});

test('the probe says which Python and which hotline package, and the log line names both', async () => {
    const info = parseProbeOutput('{"executable": "/venv/bin/python3", "version": "3.11.7", "hotlineFile": "/src/hotline/server/hotline/__init__.py", "hotlineVersion": "0.1.0"}\n');
    assert.deepEqual(info, {
        executable: '/venv/bin/python3',
        version: '3.11.7',
        hotlineFile: '/src/hotline/server/hotline/__init__.py',
        hotlineVersion: '0.1.0',
    });
    assert.equal(
        describePython('/venv/bin/python3', info),
        '/venv/bin/python3 (Python 3.11.7), hotline-reload 0.1.0 from /src/hotline/server/hotline',
    );
    assert.equal(
        describePython('python3', { executable: '/usr/bin/python3', version: '3.12.1', hotlineFile: '/x/hotline/__init__.py' }),
        'python3 = /usr/bin/python3 (Python 3.12.1), hotline (no installed distribution) from /x/hotline',
    );
    assert.equal(parseProbeOutput('not json'), undefined);
    assert.equal(describePython('/usr/bin/python3', undefined), '/usr/bin/python3');
    // The choice carries what the probe said.
    const choice = await findPython({ configured: '/venv/bin/python3', probe: async () => ({ ok: true, info }) });
    assert.ok('python' in choice && choice.info?.hotlineVersion === '0.1.0');
});

test('the real probe script runs in a Python that has hotline', async (t) => {
    const python = whichOnPath('python3', process.env.PATH);
    if (!python) {
        t.skip('no python3 on PATH');
        return;
    }
    const result = await probeImportHotline(python);
    if (!result.ok) {
        t.skip(`python3 cannot import hotline: ${result.detail}`);
        return;
    }
    assert.match(result.info?.version ?? '', /^3\.\d+/);
    assert.match(result.info?.hotlineFile ?? '', /hotline[\\/]__init__\.py$/);
    assert.ok(PROBE_SCRIPT.includes('hotline-reload'));
});
