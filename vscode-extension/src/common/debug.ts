/**
 * "Hotline: Attach Debugger": which debugger extension to use and the attach configuration it gets, or the
 * message with the pid and the gdb recipe when none is installed. Pure: no `vscode` import.
 */

export const CODELLDB_ID = 'vadimcn.vscode-lldb';
export const CPPTOOLS_ID = 'ms-vscode.cpptools';

export type DebuggerKind = 'lldb' | 'cppdbg';

/** The attach configuration handed to `vscode.debug.startDebugging` (a `vscode.DebugConfiguration`). */
export interface AttachConfig {
    type: DebuggerKind;
    request: 'attach';
    name: string;
    [key: string]: unknown;
}

/** CodeLLDB first (it needs nothing else), then the C/C++ extension (gdb); undefined when neither. */
export function chooseDebugger(installed: (extensionId: string) => boolean): DebuggerKind | undefined {
    if (installed(CODELLDB_ID)) {
        return 'lldb';
    }
    if (installed(CPPTOOLS_ID)) {
        return 'cppdbg';
    }
    return undefined;
}

/**
 * The real-time signals gdb is told to pass on silently: the runtime stops the app's threads with one
 * (usually SIG64) while it writes entry jumps, and gdb would stop at each patch. lldb passes real-time
 * signals silently by default.
 */
export const REALTIME_SIGNALS: readonly string[] = Array.from({ length: 31 }, (_, i) => `SIG${34 + i}`);
export const GDB_HANDLE_SIGNALS = `handle ${REALTIME_SIGNALS.join(' ')} nostop noprint pass`;

export function attachConfig(kind: DebuggerKind, pid: number, opts: { app?: string; program?: string } = {}): AttachConfig {
    const name = `Hotline: attach to ${opts.app ?? 'the app'} (pid ${pid})`;
    if (kind === 'lldb') {
        return { type: 'lldb', request: 'attach', name, pid };
    }
    return {
        type: 'cppdbg',
        request: 'attach',
        name,
        // cpptools needs the executable: the process's own (/proc/<pid>/exe), target/hotline/run/<bin>-<id>.
        program: opts.program ?? `/proc/${pid}/exe`,
        processId: String(pid),
        MIMode: 'gdb',
        setupCommands: [
            { description: "Pass on Hotline's patch signal silently", text: GDB_HANDLE_SIGNALS, ignoreFailures: true },
        ],
    };
}

/** The gdb command line that attaches to the app without stopping at each patch. */
export function gdbCommand(pid: number): string {
    return `gdb -p ${pid} -ex 'handle SIG64 nostop noprint pass'`;
}

/**
 * The message when no debugger extension is installed: the pid and the recipe. `ptraceScope` is the content
 * of /proc/sys/kernel/yama/ptrace_scope (undefined when there is no Yama).
 */
export function noDebuggerMessage(pid: number, ptraceScope?: string): string {
    const scope = ptraceScope?.trim();
    const yama =
        scope !== undefined && scope !== '' && scope !== '0'
            ? ` Attaching needs ptrace permission: kernel.yama.ptrace_scope is ${scope}, so attach as root or set it to 0.`
            : '';
    return (
        `Hotline: the app's pid is ${pid}. No debugger extension is installed: install CodeLLDB (or the C/C++ extension) ` +
        `and run "Hotline: Attach Debugger" again, or attach from a terminal: ${gdbCommand(pid)}.${yama}`
    );
}
