import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attachConfig, chooseDebugger, CODELLDB_ID, CPPTOOLS_ID, gdbCommand, GDB_HANDLE_SIGNALS, noDebuggerMessage } from '../common/debug';

test('CodeLLDB is preferred, then the C/C++ extension, else none', () => {
    assert.equal(chooseDebugger((id) => id === CODELLDB_ID || id === CPPTOOLS_ID), 'lldb');
    assert.equal(chooseDebugger((id) => id === CPPTOOLS_ID), 'cppdbg');
    assert.equal(chooseDebugger(() => false), undefined);
    assert.equal(CODELLDB_ID, 'vadimcn.vscode-lldb');
    assert.equal(CPPTOOLS_ID, 'ms-vscode.cpptools');
});

test('CodeLLDB attaches by pid', () => {
    assert.deepEqual(attachConfig('lldb', 4242, { app: 'counter', program: '/x/target/hotline/run/counter-1' }), {
        type: 'lldb',
        request: 'attach',
        name: 'Hotline: attach to counter (pid 4242)',
        pid: 4242,
    });
});

test('cppdbg attaches gdb by processId to the executable, passing the patch signal silently', () => {
    const c = attachConfig('cppdbg', 4242, { app: 'counter', program: '/x/target/hotline/run/counter-1' });
    assert.equal(c.type, 'cppdbg');
    assert.equal(c.request, 'attach');
    assert.equal(c.name, 'Hotline: attach to counter (pid 4242)');
    assert.equal(c.program, '/x/target/hotline/run/counter-1');
    assert.equal(c.processId, '4242');
    assert.equal(c.MIMode, 'gdb');
    const [setup] = c.setupCommands as { text: string }[];
    assert.equal(setup.text, GDB_HANDLE_SIGNALS);
    assert.match(GDB_HANDLE_SIGNALS, /^handle SIG34 SIG35 .* SIG63 SIG64 nostop noprint pass$/);
    assert.equal(attachConfig('cppdbg', 7).program, '/proc/7/exe');
    assert.equal(attachConfig('cppdbg', 7).name, 'Hotline: attach to the app (pid 7)');
});

test('without a debugger extension the message names the pid and the gdb recipe', () => {
    const m = noDebuggerMessage(4242, '0\n');
    assert.match(m, /^Hotline: the app's pid is 4242\./);
    assert.ok(m.includes(gdbCommand(4242)));
    assert.equal(gdbCommand(4242), "gdb -p 4242 -ex 'handle SIG64 nostop noprint pass'");
    assert.match(m, /install CodeLLDB/);
    assert.doesNotMatch(m, /ptrace/);
    assert.match(noDebuggerMessage(1, '1\n'), /kernel\.yama\.ptrace_scope is 1, so attach as root or set it to 0\.$/);
    assert.doesNotMatch(noDebuggerMessage(1, undefined), /ptrace/);
});
