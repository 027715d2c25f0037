import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
    appName,
    appReattached,
    appStarted,
    AppTracker,
    crashMessage,
    CRASH_PANIC_MAX,
    diagnosticLogLine,
    exitDescription,
    LineRing,
    listNames,
    PanicTracker,
    reattachedPid,
    statusLogLine,
    terminalLine,
    terminalName,
} from '../common/appOutput';

test('the panic is the last "panicked at" line of stderr and the line after it', () => {
    const t = new PanicTracker();
    t.feed('stdout', 'hello frame=1');
    assert.equal(t.panic, undefined);
    t.feed('stderr', "thread 'main' panicked at src/main.rs:12:5:");
    t.feed('stderr', 'hotline e2e crash');
    t.feed('stderr', 'note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace');
    assert.equal(t.panic, "thread 'main' panicked at src/main.rs:12:5: hotline e2e crash");
    // A later panic replaces it.
    t.feed('stderr', "thread 'worker' panicked at src/lib.rs:3:9:");
    t.feed('stderr', 'index out of bounds: the len is 0 but the index is 0');
    assert.equal(t.panic, "thread 'worker' panicked at src/lib.rs:3:9: index out of bounds: the len is 0 but the index is 0");
});

test('panic capture ignores stdout, the backtrace note, and takes old one-line panics whole', () => {
    const t = new PanicTracker();
    t.feed('stdout', "thread 'main' panicked at src/main.rs:1:1:");
    assert.equal(t.panic, undefined);
    t.feed('stderr', "thread 'main' panicked at 'boom', src/main.rs:3:5");
    t.feed('stderr', 'note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace');
    assert.equal(t.panic, "thread 'main' panicked at 'boom', src/main.rs:3:5");
    t.feed('stderr', "thread 'main' panicked at src/main.rs:2:2:");
    t.feed('stdout', 'not the message');
    t.feed('stderr', 'the message');
    assert.equal(t.panic, "thread 'main' panicked at src/main.rs:2:2: the message");
});

test('a new app forgets the old panic', () => {
    const t = new PanicTracker();
    t.feed('stderr', "thread 'main' panicked at src/main.rs:12:5:");
    t.feed('stderr', 'boom');
    t.reset();
    assert.equal(t.panic, undefined);
    t.feed('stderr', 'boom again');
    assert.equal(t.panic, undefined);
});

test('the crash notification names the exit and the panic', () => {
    const exit101 = { state: 'stopped' as const, exitCode: 101, message: 'exited with code 101' };
    assert.equal(
        crashMessage(exit101, "thread 'main' panicked at src/main.rs:12:5: boom"),
        "Hotline: the app crashed (exit code 101): thread 'main' panicked at src/main.rs:12:5: boom",
    );
    assert.equal(crashMessage(exit101, undefined), 'Hotline: the app crashed (exit code 101).');
    assert.equal(
        crashMessage({ state: 'stopped', exitCode: null, message: 'killed by signal 11' }, undefined),
        'Hotline: the app crashed (signal 11 (SIGSEGV)).',
    );
    const long = crashMessage(exit101, `thread 'main' panicked at src/main.rs:1:1: ${'x'.repeat(1000)}`);
    assert.ok(long.endsWith('…'));
    assert.ok(long.length <= 'Hotline: the app crashed (exit code 101): '.length + CRASH_PANIC_MAX);
});

test('how the app ended: its exit code, its signal with its name, or stopped', () => {
    assert.equal(exitDescription({ state: 'stopped', exitCode: 1 }), 'exit code 1');
    assert.equal(exitDescription({ state: 'stopped', exitCode: null, signal: 6 }), 'signal 6 (SIGABRT)');
    assert.equal(exitDescription({ state: 'stopped', exitCode: null, message: 'stopped' }), 'stopped');
});

test('an app started: a new pid, or without pids running right after building', () => {
    assert.ok(appStarted({ state: 'building' }, { state: 'running', pid: 10 }, undefined));
    assert.ok(appStarted({ state: 'running', pid: 10 }, { state: 'running', pid: 11 }, 10)); // re-attached, restarted
    assert.ok(!appStarted({ state: 'patching', pid: 10 }, { state: 'patched', pid: 10 }, 10));
    assert.ok(!appStarted({ state: 'running' }, { state: 'stopped', pid: 10, exitCode: 1 }, undefined));
    // An older server, without pids.
    assert.ok(appStarted({ state: 'building' }, { state: 'running' }, undefined));
    assert.ok(!appStarted({ state: 'patching' }, { state: 'running', message: 'no code change' }, undefined));
    assert.ok(!appStarted(undefined, { state: 'idle' }, undefined));
});

test('the log has a line per event, as hotline run prints them', () => {
    assert.equal(statusLogLine({ state: 'building' }, { state: 'running', runtime: 'linked', pid: 7 }, true, 7), 'app started (pid 7), runtime linked');
    assert.equal(
        statusLogLine({ state: 'patching' }, { state: 'patched', ms: 142.4, functions: ['app::tick'] }, false),
        'patched in 142ms: app::tick',
    );
    assert.equal(statusLogLine({ state: 'patching' }, { state: 'patched', ms: 9, functions: [] }, false), 'patched in 9ms: no function edited');
    assert.equal(
        statusLogLine({ state: 'patching' }, { state: 'error', ms: 90, message: 'compile error (1 error)' }, false),
        'compile error (1 error); the app keeps running its last good code',
    );
    assert.equal(
        statusLogLine({ state: 'patching' }, { state: 'error', message: 'patch refused (HL1098): the patch region is full: restart the app' }, false),
        'patch refused (HL1098): the patch region is full: restart the app; the app keeps running its last good code',
    );
    assert.equal(statusLogLine({ state: 'building' }, { state: 'error', message: 'the build failed' }, false), 'the build failed');
    assert.equal(statusLogLine({ state: 'patching' }, { state: 'running', message: 'no code change' }, false), 'no code change');
    assert.equal(statusLogLine({ state: 'running' }, { state: 'stopped', exitCode: 101, message: 'exited with code 101' }, false), 'app exited (exit code 101)');
    assert.equal(statusLogLine({ state: 'running' }, { state: 'stopped', exitCode: null, message: 'stopped' }, false), 'app stopped');
    assert.equal(
        statusLogLine({ state: 'idle' }, { state: 'building', message: 'fat build' }, false),
        'full build (keeps every symbol so patches can call anything)…',
    );
    assert.equal(
        statusLogLine({ state: 'stopped' }, { state: 'building', message: 'the app is not running: full rebuild and relaunch' }, false),
        'the app is not running: full rebuild and relaunch…',
    );
    assert.equal(statusLogLine({ state: 'building' }, { state: 'building', message: 'fat build' }, false), undefined);
    assert.equal(statusLogLine({ state: 'running' }, { state: 'patching' }, false), undefined);
    assert.equal(statusLogLine(undefined, { state: 'idle' }, false), undefined);
});

test('a patch lists six functions, then how many more', () => {
    assert.equal(listNames(['a', 'b']), 'a, b');
    assert.equal(listNames(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']), 'a, b, c, d, e, f and 2 more');
});

test('diagnostics in the log: Hotline rules always, rustc only its errors', () => {
    const base = { file: 'src/main.rs', line: 11, character: 4, message: 'mismatched types\nexpected `u32`' };
    assert.equal(
        diagnosticLogLine({ ...base, severity: 'error', source: 'rustc (hotline)', code: 'E0308' }),
        'src/main.rs:12:5: error[E0308]: mismatched types',
    );
    assert.equal(diagnosticLogLine({ ...base, severity: 'warning', source: 'rustc (hotline)' }), undefined);
    assert.equal(
        diagnosticLogLine({ ...base, severity: 'warning', source: 'hotline', code: 'HL1007', message: 'signature changed' }),
        'src/main.rs:12:5: warning [HL1007]: signature changed',
    );
});

test('the terminal is named after the bin setting, else the package', () => {
    const toml = '[package]\nname = "counter"\nversion = "0.1.0"\n\n[dependencies]\nname = "not-this"\n';
    assert.equal(appName(toml), 'counter');
    assert.equal(appName(toml, 'server'), 'server');
    assert.equal(appName('[workspace]\nmembers = ["a"]\n'), undefined);
    assert.equal(appName("[dependencies]\nx = 1\n[package]\nname='late'\n"), 'late');
    assert.equal(appName(undefined), undefined);
    assert.equal(terminalName('counter'), 'Hotline: counter');
    assert.equal(terminalName(undefined), 'Hotline: app');
});

test('terminal lines end in CRLF; Hotline lines are marked and dimmed', () => {
    assert.equal(terminalLine('hello frame=1'), 'hello frame=1\r\n');
    assert.equal(terminalLine('\x1b[32mgreen\x1b[0m'), '\x1b[32mgreen\x1b[0m\r\n');
    assert.equal(terminalLine('patched in 9ms: a', true), '\x1b[2;36m[hotline] patched in 9ms: a\x1b[0m\r\n');
});

test('the replay buffer keeps the last lines', () => {
    const ring = new LineRing(3);
    for (const l of ['1', '2', '3', '4', '5']) ring.push(l);
    assert.deepEqual(ring.all, ['3', '4', '5']);
});

test("the server's log names the app it re-attached to", () => {
    assert.equal(reattachedPid('Hotline re-attached to the running app (pid 4242)'), 4242);
    assert.equal(reattachedPid('Hotline stopped the app (pid 4242) an earlier server left running: Cargo.toml changed'), undefined);
    assert.equal(reattachedPid("language server's Python: /usr/bin/python3"), undefined);
});

test('an app re-attached to: announced by the log, or running with no build before it', () => {
    assert.ok(appReattached({ state: 'idle' }, { state: 'running', pid: 7 }, 7));
    assert.ok(appReattached({ state: 'idle' }, { state: 'running', pid: 7 }, undefined)); // no build: not launched here
    assert.ok(appReattached(undefined, { state: 'running', pid: 7 }, undefined));
    assert.ok(appReattached({ state: 'error', message: 'counter is already under another Hotline' }, { state: 'running', pid: 7 }, 7));
    assert.ok(!appReattached({ state: 'building' }, { state: 'running', pid: 8 }, undefined)); // built and launched
    assert.ok(!appReattached({ state: 'building' }, { state: 'running', pid: 8 }, 7)); // an older announcement
    assert.ok(!appReattached({ state: 'building' }, { state: 'running' }, undefined)); // an older server
});

test('after a window reload: the re-attached app is logged as such, with its pid, and its terminal shown', () => {
    const app = new AppTracker();
    // The new server starts (idle), says in its log that it re-attached, then the status: running, same pid.
    assert.deepEqual(app.status({ state: 'idle' }), { started: false, reattached: false, pid: undefined, line: undefined });
    app.serverLog("language server's Python: /usr/bin/python3 (Python 3.11.2)");
    app.serverLog('Hotline re-attached to the running app (pid 4242)');
    assert.deepEqual(app.status({ state: 'running', pid: 4242, runtime: 'linked' }), {
        started: true,
        reattached: true,
        pid: 4242,
        line: 'app re-attached (pid 4242), runtime linked',
    });
    assert.equal(app.pid, 4242);
    // The next save patches the same app: not a new one.
    assert.deepEqual(app.status({ state: 'patching', pid: 4242 }), { started: false, reattached: false, pid: 4242, line: undefined });
    assert.deepEqual(app.status({ state: 'patched', pid: 4242, ms: 150, functions: ['counter::greeting'] }), {
        started: false,
        reattached: false,
        pid: 4242,
        line: 'patched in 150ms: counter::greeting',
    });
    // A restart builds and launches a new app: "app started" again.
    app.status({ state: 'building', message: 'fat build' });
    assert.deepEqual(app.status({ state: 'running', pid: 5000, runtime: 'linked' }), {
        started: true,
        reattached: false,
        pid: 5000,
        line: 'app started (pid 5000), runtime linked',
    });
});

test('Run launches an app: "app started"; a stale re-attach announcement does not make it re-attached', () => {
    const app = new AppTracker();
    app.status({ state: 'idle' });
    app.serverLog('Hotline re-attached to the running app (pid 10)');
    app.status({ state: 'error', message: 'Hotline: internal error' });
    app.status({ state: 'building', message: 'fat build' });
    const change = app.status({ state: 'running', pid: 11, runtime: 'injected' });
    assert.equal(change.line, 'app started (pid 11), runtime injected');
    assert.ok(change.started && !change.reattached);
    // Stopped: no pid; a command's pid is not taken for a stopped app.
    assert.equal(app.status({ state: 'stopped', exitCode: null, message: 'stopped' }).pid, undefined);
    assert.equal(app.commandPid(11), false);
    assert.equal(app.pid, undefined);
});

test('Take over: the app another Hotline ran is re-attached to after the busy error', () => {
    const app = new AppTracker();
    app.status({ state: 'idle' });
    app.status({ state: 'error', message: 'counter is already under another Hotline, pid 100 (its app is pid 200): …' });
    app.serverLog('Hotline re-attached to the running app (pid 200)');
    const change = app.status({ state: 'running', pid: 200, runtime: 'linked' });
    assert.equal(change.line, 'app re-attached (pid 200), runtime linked');
    // The server goes away: nothing is known of the app any more.
    app.serverDown();
    assert.equal(app.pid, undefined);
    assert.equal(app.state, undefined);
});

test('an older server without pids: the run command names the pid', () => {
    const app = new AppTracker();
    app.status({ state: 'building' });
    const change = app.status({ state: 'running' });
    assert.ok(change.started && !change.reattached);
    assert.equal(change.line, 'app started');
    assert.equal(app.commandPid(77), true);
    assert.equal(app.pid, 77);
});

test("the crash notification has no ANSI colour codes of the app's logger", () => {
    assert.equal(
        crashMessage({ state: 'stopped', exitCode: 101 }, "\x1b[31mthread 'main' panicked at src/main.rs:3:5:\x1b[0m boom"),
        "Hotline: the app crashed (exit code 101): thread 'main' panicked at src/main.rs:3:5: boom",
    );
});
