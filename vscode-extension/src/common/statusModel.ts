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

export function formatStatus(s: StatusParams, progress?: ProgressInfo): StatusView {
    const ms = s.ms !== undefined ? formatMs(s.ms) : '';
    const detail = s.message ? `\n${s.message}` : '';
    // Only the unusual mode takes room in the status bar; the tooltip always names it.
    const mode = s.runtime === 'injected' ? ' · injected' : '';
    const runtime = runtimeNote(s.runtime);
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
                text: `$(sync~spin) building${step}`,
                tooltip: `Hotline: building${pct}${progress?.message ? `: ${progress.message}` : ''}${detail}`,
                severity: 'normal',
                command: 'hotline.showOutput',
            };
        }
        case 'running':
            return {
                text: `$(play) running${mode}`,
                tooltip: `Hotline: the app is running; save a .rs file to patch it.${detail}${ms ? ` (${ms})` : ''}${runtime}`,
                severity: 'normal',
                command: 'hotline.showOutput',
            };
        case 'patching':
            return {
                text: '$(sync~spin) patching',
                tooltip: 'Hotline: patching the running app' + detail,
                severity: 'normal',
                command: 'hotline.showOutput',
            };
        case 'patched': {
            const fns = s.functions ?? [];
            const list = fns.length ? `\n${fns.map((f) => `• ${f}`).join('\n')}` : '';
            return {
                text: `$(zap) patched${ms ? ` ${ms}` : ''}${mode}`,
                tooltip: `Hotline: patched ${fns.length} function${fns.length === 1 ? '' : 's'}${ms ? ` in ${ms}` : ''}${list}${runtime}\nClick for the patch details.`,
                severity: 'normal',
                command: 'hotline.openLastPatch',
            };
        }
        case 'error':
            return {
                text: `$(error) ${truncate(s.message ?? 'error', 40)}`,
                tooltip: `Hotline: ${s.message ?? 'error'}\nClick to show the output.`,
                severity: 'error',
                command: 'hotline.showOutput',
            };
        case 'stopped': {
            const failed = typeof s.exitCode === 'number' && s.exitCode !== 0;
            return {
                text: failed ? `$(debug-stop) stopped (exit ${s.exitCode})` : '$(debug-stop) stopped',
                tooltip: `Hotline: the app ${s.message ?? 'stopped'}. Run it again with "Hotline: Run App".`,
                severity: failed ? 'warning' : 'normal',
                command: 'hotline.showOutput',
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

/** One line of app output for the output channel. */
export function formatOutputLine(params: { stream?: unknown; line?: unknown }): string {
    const line = typeof params.line === 'string' ? params.line : String(params.line ?? '');
    return params.stream === 'stderr' ? `[stderr] ${line}` : line;
}
