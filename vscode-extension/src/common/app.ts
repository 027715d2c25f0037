/**
 * The app under Hotline as the user sees it: its output in the "Hotline: <app>" terminal (revealed when it
 * starts or is re-attached to), a notification when it crashes (with the panic and "Show Output"), one log
 * line per event (started or re-attached, patched, compile error, refused, exited) in the Hotline log, its
 * pid for the status tooltip and "Hotline: Attach Debugger".
 */
import * as fs from 'fs';
import * as vscode from 'vscode';
import { AppTracker, crashMessage, diagnosticLogLine, DiagnosticInfo, PanicTracker, terminalName } from './appOutput';
import { AppTerminal } from './appTerminal';
import { attachConfig, chooseDebugger, CODELLDB_ID, gdbCommand, noDebuggerMessage } from './debug';
import { log, logError } from './log';
import { StatusBar } from './status';
import { isCrash, StatusParams } from './statusModel';

/** How long after a crash's status the notification waits for the app's last stderr lines. */
export const CRASH_NOTICE_DELAY_MS = 500;

/** `hotline.*` server commands whose result names the app's new pid. */
const STARTS_APP = new Set(['hotline.run', 'hotline.restart', 'hotline.rebuild']);

const SEVERITIES: Record<number, DiagnosticInfo['severity']> = {
    [vscode.DiagnosticSeverity.Error]: 'error',
    [vscode.DiagnosticSeverity.Warning]: 'warning',
    [vscode.DiagnosticSeverity.Information]: 'information',
    [vscode.DiagnosticSeverity.Hint]: 'hint',
};

export class AppMonitor implements vscode.Disposable {
    readonly terminal: AppTerminal;
    private readonly app = new AppTracker();
    private readonly panic = new PanicTracker();
    private crashTimer: NodeJS.Timeout | undefined;

    constructor(
        private readonly status: StatusBar,
        private readonly appName: () => string | undefined,
    ) {
        this.terminal = new AppTerminal(() => terminalName(this.appName()));
    }

    /** The app's pid while it runs (from the status, else from the run command's result). */
    get appPid(): number | undefined {
        return this.app.pid;
    }

    /**
     * A `hotline/status` notification (or `idle` when the server (re)starts). An app that starts, or that the
     * server re-attached to (after a window reload), gets its terminal shown: its output from then on.
     */
    onStatus(params: StatusParams): void {
        const change = this.app.status(params);
        if (change.started) {
            this.panic.reset();
        }
        this.status.setPid(change.pid);
        this.status.update(params);
        if (change.line !== undefined) {
            log(change.line);
            this.terminal.hotlineLine(change.line);
        }
        if (change.started) {
            this.terminal.reveal();
        }
        if (isCrash(params)) {
            this.scheduleCrashNotice(params);
        }
    }

    /** A window/logMessage of the server: it says so when it re-attached to the app (before the status). */
    onServerLog(message: string): void {
        this.app.serverLog(message);
    }

    /** A `hotline/output` notification: one line the app printed. */
    onOutput(stream: string, line: string): void {
        this.panic.feed(stream, line);
        this.terminal.appLine(line);
    }

    /** The result of one of the server's commands: run, restart and rebuild name the new app's pid. */
    onCommandResult(command: string, result: unknown): void {
        if (!STARTS_APP.has(command) || result === null || typeof result !== 'object') {
            return;
        }
        const { ok, pid: raw } = result as { ok?: unknown; pid?: unknown };
        // (A number, or its digits: the server's command results have come back with it as a string.)
        const pid = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
        if (ok === true && pid !== undefined && this.app.commandPid(pid)) {
            this.status.setPid(pid);
        }
    }

    /** Diagnostics the server published: errors and Hotline's rules go to the log, as `hotline run` prints them. */
    onDiagnostics(uri: vscode.Uri, diagnostics: readonly vscode.Diagnostic[]): void {
        for (const d of diagnostics) {
            const code = typeof d.code === 'object' ? String(d.code.value) : d.code !== undefined ? String(d.code) : undefined;
            const line = diagnosticLogLine({
                file: vscode.workspace.asRelativePath(uri, false),
                line: d.range.start.line,
                character: d.range.start.character,
                severity: SEVERITIES[d.severity] ?? 'error',
                message: d.message,
                source: d.source,
                code,
            });
            if (line !== undefined) {
                log(line);
            }
        }
    }

    /** The server stopped: no app is known any more. */
    serverDown(): void {
        this.app.serverDown();
        this.status.setPid(undefined);
    }

    private scheduleCrashNotice(params: StatusParams): void {
        clearTimeout(this.crashTimer);
        // The app's exit can be reported before its last stderr lines (the panic) are forwarded.
        this.crashTimer = setTimeout(() => {
            this.crashTimer = undefined;
            const message = crashMessage(params, this.panic.panic);
            log(message.replace(/^Hotline: /, ''));
            void vscode.window.showErrorMessage(message, 'Show Output').then((choice) => {
                if (choice === 'Show Output') {
                    this.terminal.reveal(false);
                }
            });
        }, CRASH_NOTICE_DELAY_MS);
    }

    /** "Hotline: Attach Debugger": CodeLLDB or the C/C++ extension attaches; else the pid and the recipe. */
    async attachDebugger(): Promise<void> {
        const pid = this.app.pid;
        if (pid === undefined || !fs.existsSync(`/proc/${pid}`)) {
            void vscode.window.showInformationMessage('Hotline: the app is not running. Run it ("Hotline: Run App"), then attach.');
            return;
        }
        const kind = chooseDebugger((id) => vscode.extensions.getExtension(id) !== undefined);
        if (kind !== undefined) {
            let program: string | undefined;
            try {
                program = fs.readlinkSync(`/proc/${pid}/exe`);
            } catch {
                program = undefined;
            }
            const config = attachConfig(kind, pid, { app: this.appName(), program });
            log(`attaching ${kind} to pid ${pid}`);
            const folder = vscode.workspace.workspaceFolders?.[0];
            const started = await vscode.debug.startDebugging(folder, config);
            if (!started) {
                logError(`the ${kind} debugger did not start`);
            }
            return;
        }
        let scope: string | undefined;
        try {
            scope = fs.readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8');
        } catch {
            scope = undefined;
        }
        const message = noDebuggerMessage(pid, scope);
        log(message.replace(/^Hotline: /, ''));
        const choice = await vscode.window.showInformationMessage(message, 'Install CodeLLDB', 'Copy gdb Command');
        if (choice === 'Install CodeLLDB') {
            try {
                await vscode.commands.executeCommand('workbench.extensions.installExtension', CODELLDB_ID);
            } catch (err) {
                logError('installing CodeLLDB', err);
                return;
            }
            void vscode.window.showInformationMessage('Hotline: CodeLLDB is installed. Run "Hotline: Attach Debugger" again to attach to the app.');
        } else if (choice === 'Copy gdb Command') {
            await vscode.env.clipboard.writeText(gdbCommand(pid));
        }
    }

    dispose(): void {
        clearTimeout(this.crashTimer);
        this.terminal.dispose();
    }
}
