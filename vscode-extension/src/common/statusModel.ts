/**
 * What the status bar item shows for a `hotline/status` notification (schemas/lsp-status.schema.json).
 * Pure: no `vscode` import, so unit tests run in plain node.
 */

export type HotlineState = 'idle' | 'building' | 'running' | 'patching' | 'patched' | 'error' | 'stopped';

export interface StatusParams {
    state: HotlineState;
    ms?: number;
    functions?: string[];
    message?: string;
    exitCode?: number | null;
    /** While an app runs: `linked` (it depends on the runtime crate) or `injected` (preloaded). */
    runtime?: RuntimeMode;
    /** The app's process id, while it runs (when the server sends it). */
    pid?: number;
    /** The signal that ended the app (state stopped), when the server sends it. */
    signal?: number;
}

export type RuntimeMode = 'linked' | 'injected';

export type Severity = 'normal' | 'warning' | 'error';

export interface StatusView {
    text: string;
    tooltip: string;
    severity: Severity;
    /** Id of the extension command run on click. */
    command: string;
}

export const STATES: readonly HotlineState[] = ['idle', 'building', 'running', 'patching', 'patched', 'error', 'stopped'];

export function isStatusParams(value: unknown): value is StatusParams {
    return (
        value !== null &&
        typeof value === 'object' &&
        typeof (value as { state?: unknown }).state === 'string' &&
        (STATES as readonly string[]).includes((value as { state: string }).state)
    );
}

/** 142 -> "142ms", 1530 -> "1.5s", 65000 -> "1m 5s". */
export function formatMs(ms: number): string {
    if (!Number.isFinite(ms) || ms < 0) {
        return '';
    }
    if (ms < 10000) {
        return `${Math.round(ms)}ms`;
    }
    if (ms < 60000) {
        return `${(ms / 1000).toFixed(1)}s`;
    }
    const s = Math.round(ms / 1000);
    return `${Math.floor(s / 60)}m ${s % 60}s`;
}

function truncate(text: string, max: number): string {
    return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Removes ANSI escape sequences from a message: colours and other CSI sequences (rustc's rendered
 * diagnostics), OSC sequences (terminal hyperlinks) and the other escapes (character sets, ESC M...).
 */
export function stripAnsi(text: string): string {
    return text.replace(/\x1b(?:\[[0-?]*[ -\/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -\/]*[0-~])|\x9b[0-?]*[ -\/]*[@-~]/g, '');
}

/**
 * A message of the server as a notification (window/showMessage, window/showMessageRequest) or the log shows
 * it: without ANSI escape sequences (a failed build's message carries rustc's colours, which neither renders)
 * nor trailing blanks.
 */
export function plainMessage(message: string): string {
    return stripAnsi(message)
        .split('\n')
        .map((line) => line.trimEnd())
        .join('\n')
        .trimEnd();
}

/** The status bar's room for a message (the whole message is in the tooltip). */
export const SUMMARY_MAX = 40;

/**
 * A message short enough for the status bar: its first line, at most `max` characters, cut at a word
 * boundary when one is near, with "…" when anything was left out. A leading "Hotline: " is dropped (the
 * item already says Hotline).
 */
export function summarize(text: string, max: number = SUMMARY_MAX): string {
    const trimmed = text.trim().replace(/^Hotline:\s*/, '');
    const lines = trimmed.split(/\r?\n/);
    const first = lines[0].replace(/\s+/g, ' ').trim();
    const more = lines.slice(1).some((l) => l.trim() !== '');
    if (first.length <= max && !more) {
        return first;
    }
    if (first.length < max) {
        return `${first}…`;
    }
    let cut = first.slice(0, max - 1);
    const space = cut.lastIndexOf(' ');
    if (space >= Math.floor(max * 0.6)) {
        cut = cut.slice(0, space);
    }
    return `${cut.replace(/[\s,;:(\-]+$/, '')}…`;
}

/** True when a `stopped` status is a crash: a non-zero exit code or a signal (a user's stop has neither). */
export function isCrash(s: StatusParams): boolean {
    if (s.state !== 'stopped') {
        return false;
    }
    return (typeof s.exitCode === 'number' && s.exitCode !== 0) || exitSignal(s) !== undefined;
}

/** The signal that ended the app: the status's `signal`, else the one its message names. */
export function exitSignal(s: StatusParams): number | undefined {
    if (typeof s.signal === 'number') {
        return s.signal;
    }
    const m = /killed by signal (\d+)/.exec(s.message ?? '');
    return m ? Number(m[1]) : undefined;
}

/** `exit 101`, `signal 11`, or undefined for a user's stop. */
export function exitShort(s: StatusParams): string | undefined {
    const signal = exitSignal(s);
    if (signal !== undefined) {
        return `signal ${signal}`;
    }
    return typeof s.exitCode === 'number' && s.exitCode !== 0 ? `exit ${s.exitCode}` : undefined;
}

/** The tooltip line with the app's pid and how to attach a debugger to it. */
export function pidNote(pid?: number): string {
    return pid !== undefined ? `\nApp pid ${pid}: "Hotline: Attach Debugger" attaches a debugger to it.` : '';
}

/** Progress of a build from `$/progress` (`12/40 serde`, 30 %). */
export interface ProgressInfo {
    message?: string;
    percentage?: number;
}

/** The tooltip line that says how the runtime came into the app. */
export function runtimeNote(runtime?: RuntimeMode): string {
    if (runtime === 'injected') {
        return '\nRuntime injected: the app does not depend on the runtime crate (no hotline::call safe points or on_patch).';
    }
    if (runtime === 'linked') {
        return '\nRuntime linked: hotline::call safe points and on_patch are available.';
    }
    return '';
}

export function formatStatus(s: StatusParams, progress?: ProgressInfo, appPid?: number): StatusView {
    const ms = s.ms !== undefined ? formatMs(s.ms) : '';
    const detail = s.message ? `\n${s.message}` : '';
    // Only the unusual mode takes room in the status bar; the tooltip always names it.
    const mode = s.runtime === 'injected' ? ' · injected' : '';
    const runtime = runtimeNote(s.runtime);
    const pid = s.pid ?? appPid;
    const pidLine = pidNote(pid);
    // Every state says whose item it is, as rust-analyzer's does: an icon, "Hotline", then the state.
    switch (s.state) {
        case 'idle':
            return {
                text: '$(flame) Hotline',
                tooltip: 'Hotline: idle. Run the app with "Hotline: Run App" or the ▶ lens above fn main.' + detail,
                severity: 'normal',
                command: 'hotline.showOutput',
            };
        case 'building': {
            const step = progress?.message ? ` ${truncate(progress.message.split(' ')[0], 12)}` : '';
            const pct = progress?.percentage !== undefined ? ` (${progress.percentage}%)` : '';
            return {
                text: `$(sync~spin) Hotline: building${step}`,
                tooltip: `Hotline: building${pct}${progress?.message ? `: ${progress.message}` : ''}${detail}`,
                severity: 'normal',
                command: 'hotline.showOutput',
            };
        }
        case 'running':
            return {
                text: `$(play) Hotline: running${mode}`,
                tooltip: `Hotline: the app is running; save a .rs file to patch it.${detail}${ms ? ` (${ms})` : ''}${runtime}${pidLine}\nClick to show the app's output.`,
                severity: 'normal',
                command: 'hotline.showAppOutput',
            };
        case 'patching':
            return {
                text: '$(sync~spin) Hotline: patching',
                tooltip: 'Hotline: patching the running app' + detail + pidLine,
                severity: 'normal',
                command: 'hotline.showOutput',
            };
        case 'patched': {
            const fns = s.functions ?? [];
            const list = fns.length ? `\n${fns.map((f) => `• ${f}`).join('\n')}` : '';
            // old code still running (HL1012), entry jumps pending, an edited function not called since the
            // patch (HL1013), or jumps that landed
            const flagged = ['(HL1012)', 'pending', '(HL1013)'].some((word) => s.message?.includes(word));
            const warn = flagged ? ' $(warning)' : '';
            const note = s.message ? `\n${s.message}` : '';
            return {
                text: `$(zap) Hotline: patched${ms ? ` ${ms}` : ''}${mode}${warn}`,
                tooltip: `Hotline: patched ${fns.length} function${fns.length === 1 ? '' : 's'}${ms ? ` in ${ms}` : ''}${list}${note}${runtime}${pidLine}\nClick for the patch details.`,
                severity: warn ? 'warning' : 'normal',
                command: 'hotline.openLastPatch',
            };
        }
        case 'error': {
            const message = stripAnsi(s.message ?? 'error').trim().replace(/^Hotline:\s*/, '');
            return {
                text: `$(error) Hotline: ${summarize(message)}`,
                tooltip: `Hotline: ${message}${pidLine}\nClick to show the log.`,
                severity: 'error',
                command: 'hotline.showOutput',
            };
        }
        case 'stopped': {
            const how = exitShort(s);
            return {
                text: how ? `$(debug-stop) Hotline: stopped (${how})` : '$(debug-stop) Hotline: stopped',
                tooltip: `Hotline: the app ${s.message ?? 'stopped'}. Run it again with "Hotline: Run App".\nClick to show the app's output.`,
                severity: how ? 'warning' : 'normal',
                command: 'hotline.showAppOutput',
            };
        }
    }
}

/** Shown when the server is not running (not started, crashed, or no Python found). */
export function serverDownStatus(reason: string): StatusView {
    return {
        text: '$(error) Hotline: server stopped',
        tooltip: `Hotline: ${reason}\nClick to show the output.`,
        severity: 'error',
        command: 'hotline.showOutput',
    };
}
