/**
 * The app's output and life: panic capture, the crash notification's text, the log lines Hotline writes for
 * each status (as `hotline run` prints them), the terminal's name and its replay buffer.
 * Pure: no `vscode` import, so unit tests run in plain node.
 */
import * as os from 'os';
import { exitSignal, formatMs, isCrash, StatusParams, stripAnsi } from './statusModel';

/**
 * Remembers the app's last panic from its stderr: the `thread '…' panicked at src/main.rs:12:5:` line and
 * the line after it (the panic's message). Rust before 1.73 printed `panicked at 'message', file:line:col`
 * on one line: then that line is the whole panic.
 */
export class PanicTracker {
    private location: string | undefined;
    private message: string | undefined;
    private expectMessage = false;

    feed(stream: string, line: string): void {
        if (stream !== 'stderr') {
            return;
        }
        if (/\bpanicked at\b/.test(line)) {
            this.location = line.trim();
            this.message = undefined;
            this.expectMessage = /:\s*$/.test(line);
            return;
        }
        if (this.expectMessage) {
            this.expectMessage = false;
            if (!/^note: run with `RUST_BACKTRACE/.test(line)) {
                this.message = line.trim();
            }
        }
    }

    /** The last panic: its location line and its message, on one line; undefined when none since reset. */
    get panic(): string | undefined {
        if (this.location === undefined) {
            return undefined;
        }
        return this.message ? `${this.location} ${this.message}` : this.location;
    }

    /** A new app started: forget the old one's panic. */
    reset(): void {
        this.location = this.message = undefined;
        this.expectMessage = false;
    }
}

/** `SIGSEGV` for 11, when node knows the number. */
export function signalName(signal: number): string | undefined {
    const entry = Object.entries(os.constants.signals).find(([, n]) => n === signal);
    return entry?.[0];
}

/** How the app ended: `exit code 101`, `signal 11 (SIGSEGV)`, `exit code 0`, or `stopped`. */
export function exitDescription(s: StatusParams): string {
    const signal = exitSignal(s);
    if (signal !== undefined) {
        const name = signalName(signal);
        return `signal ${signal}${name ? ` (${name})` : ''}`;
    }
    return typeof s.exitCode === 'number' ? `exit code ${s.exitCode}` : 'stopped';
}

/** A panic longer than this is cut in the crash notification (the app's output has all of it). */
export const CRASH_PANIC_MAX = 300;

/** The crash notification: how the app ended and, when it panicked, the panic's location and message. */
export function crashMessage(s: StatusParams, panic: string | undefined): string {
    const how = exitDescription(s);
    if (!panic) {
        return `Hotline: the app crashed (${how}).`;
    }
    const plain = stripAnsi(panic); // a logger's colours, when the app panicked through one
    const text = plain.length > CRASH_PANIC_MAX ? `${plain.slice(0, CRASH_PANIC_MAX - 1)}…` : plain;
    return `Hotline: the app crashed (${how}): ${text}`;
}

/** `a, b, c` with at most `max` names, then `and N more` (as `hotline run` lists a patch's functions). */
export function listNames(names: readonly string[], max = 6): string {
    const shown = names.slice(0, max).join(', ');
    return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/**
 * Did this status start a new app? With pids: a new pid. Without (older servers): `running` right after
 * `building` (a run, restart or rebuild; a save that changed nothing goes patching -> running).
 */
export function appStarted(prev: StatusParams | undefined, next: StatusParams, prevPid: number | undefined): boolean {
    if (next.pid !== undefined) {
        return next.pid !== prevPid && next.state !== 'stopped';
    }
    return next.state === 'running' && prev?.state === 'building';
}

/** What the server logs (window/logMessage) when it re-attached to an app an earlier engine left running. */
const REATTACHED_LOG = /\bre-attached to the running app \(pid (\d+)\)/;

/** The pid of `Hotline re-attached to the running app (pid 4242)`; undefined for any other log message. */
export function reattachedPid(logMessage: string): number | undefined {
    const m = REATTACHED_LOG.exec(logMessage);
    return m ? Number(m[1]) : undefined;
}

/**
 * Is the app this status started one the server re-attached to (left running by the server before a window
 * reload, a crashed server, or another Hotline it took the app over from) rather than one it built and
 * launched? The server says so in its log just before (`announcedPid`); and an app it launches always comes
 * after a `building` status, one it re-attaches to never does.
 */
export function appReattached(prev: StatusParams | undefined, next: StatusParams, announcedPid: number | undefined): boolean {
    if (next.state !== 'running' || next.pid === undefined) {
        return false;
    }
    return next.pid === announcedPid || prev?.state !== 'building';
}

/** What one `hotline/status` changed about the app (AppTracker.status). */
export interface AppChange {
    /** A new app: launched, or re-attached to. Its terminal is shown and its old panic forgotten. */
    started: boolean;
    /** The new app is one the server re-attached to, running since before (its state intact). */
    reattached: boolean;
    /** The app's pid while it runs. */
    pid: number | undefined;
    /** The line for the log and the app's terminal, if the change is worth one. */
    line: string | undefined;
}

/**
 * The app as the server's notifications tell it: its pid, whether a status started it, and whether the
 * server launched it or re-attached to it (from the log message that precedes the status).
 */
export class AppTracker {
    private prev: StatusParams | undefined;
    private appPid: number | undefined;
    private announced: number | undefined;

    /** The app's pid while it runs. */
    get pid(): number | undefined {
        return this.appPid;
    }

    /** The last status. */
    get state(): StatusParams | undefined {
        return this.prev;
    }

    /** A window/logMessage of the server: notes the app it says it re-attached to. */
    serverLog(message: string): void {
        const pid = reattachedPid(message);
        if (pid !== undefined) {
            this.announced = pid;
        }
    }

    /** A `hotline/status` notification (or `idle` when the server (re)starts). */
    status(params: StatusParams): AppChange {
        const prev = this.prev;
        const started = appStarted(prev, params, this.appPid);
        const reattached = started && appReattached(prev, params, this.announced);
        if (params.state === 'stopped' || params.state === 'idle') {
            this.appPid = undefined;
        } else if (params.pid !== undefined) {
            this.appPid = params.pid;
        } else if (started) {
            this.appPid = undefined; // an older server: the run command's result names the new app's pid
        }
        if (started) {
            this.announced = undefined;
        }
        this.prev = params;
        return { started, reattached, pid: this.appPid, line: statusLogLine(prev, params, started, this.appPid, reattached) };
    }

    /** The pid a run, restart or rebuild command returned; true if taken (an app runs). */
    commandPid(pid: number): boolean {
        const state = this.prev?.state;
        if (state === 'stopped' || state === 'idle') {
            return false;
        }
        this.appPid = pid;
        return true;
    }

    /** The server stopped: no app is known any more. */
    serverDown(): void {
        this.appPid = this.prev = this.announced = undefined;
    }
}

/** What a full build is, as `hotline run` says it. */
export const FULL_BUILD = 'full build (keeps every symbol so patches can call anything)';

/**
 * The line the Hotline log (and the app's terminal) gets for a status change, as `hotline run` prints its
 * events; undefined when the change is not worth a line (patching, idle, progress).
 */
export function statusLogLine(
    prev: StatusParams | undefined,
    next: StatusParams,
    started: boolean,
    pid?: number,
    reattached = false,
): string | undefined {
    switch (next.state) {
        case 'building': {
            if (prev?.state === 'building') {
                return undefined;
            }
            const what = !next.message || next.message === 'fat build' ? FULL_BUILD : next.message;
            return `${what}…`;
        }
        case 'running':
            if (started) {
                const runtime = next.runtime ? `, runtime ${next.runtime}` : '';
                return `app ${reattached ? 're-attached' : 'started'}${pid !== undefined ? ` (pid ${pid})` : ''}${runtime}`;
            }
            return next.message && prev?.state === 'patching' ? next.message : undefined;
        case 'patched': {
            const fns = next.functions ?? [];
            const ms = next.ms !== undefined ? ` in ${formatMs(next.ms)}` : '';
            return `patched${ms}: ${fns.length ? listNames(fns) : 'no function edited'}`;
        }
        case 'error': {
            const message = stripAnsi(next.message ?? 'error').replace(/^Hotline:\s*/, '');
            const keeps = prev?.state === 'patching' && /^(compile error|patch refused)/.test(message);
            return keeps ? `${message}; the app keeps running its last good code` : message;
        }
        case 'stopped':
            if (isCrash(next) || typeof next.exitCode === 'number') {
                return `app exited (${exitDescription(next)})`;
            }
            return prev?.state === 'stopped' ? undefined : 'app stopped';
        default:
            return undefined;
    }
}

/** The app's name for its terminal: the `bin` setting, else the `[package]` name of its Cargo.toml. */
export function appName(cargoToml: string | undefined, bin?: string | null): string | undefined {
    if (bin) {
        return bin;
    }
    if (cargoToml === undefined) {
        return undefined;
    }
    const pkg = /^\s*\[package\]\s*$([\s\S]*?)(?=^\s*\[|$(?![\s\S]))/m.exec(cargoToml);
    const name = pkg ? /^\s*name\s*=\s*["']([^"']+)["']/m.exec(pkg[1]) : null;
    return name?.[1];
}

export function terminalName(app: string | undefined): string {
    return `Hotline: ${app ?? 'app'}`;
}

/** A line for a terminal: `\r\n` line ends (a pseudo-terminal is raw), Hotline's own lines dimmed cyan. */
export function terminalLine(line: string, own = false): string {
    const text = line.replace(/\r?\n/g, '\r\n');
    return own ? `\x1b[2;36m[hotline] ${text}\x1b[0m\r\n` : `${text}\r\n`;
}

/** The last `capacity` lines written, replayed when the terminal is opened (again). */
export class LineRing {
    private readonly lines: string[] = [];

    constructor(private readonly capacity: number) {}

    push(line: string): void {
        this.lines.push(line);
        if (this.lines.length > this.capacity) {
            this.lines.splice(0, this.lines.length - this.capacity);
        }
    }

    get all(): readonly string[] {
        return this.lines;
    }
}

/** A published diagnostic, as the log needs it (from a `vscode.Diagnostic`). */
export interface DiagnosticInfo {
    file: string;
    /** 0-based, as in LSP. */
    line: number;
    character: number;
    severity: 'error' | 'warning' | 'information' | 'hint';
    message: string;
    source?: string;
    code?: string;
}

/**
 * The log line for a diagnostic the server published, or undefined when it is not logged: Hotline's own
 * rules (source `hotline`) always, rustc's (source `rustc (hotline)`) only errors, as `hotline run` prints.
 */
export function diagnosticLogLine(d: DiagnosticInfo): string | undefined {
    const ours = d.source === 'hotline';
    if (!ours && d.severity !== 'error') {
        return undefined;
    }
    const code = d.code ? (ours ? ` [${d.code}]` : `[${d.code}]`) : '';
    const first = d.message.split(/\r?\n/)[0];
    return `${d.file}:${d.line + 1}:${d.character + 1}: ${d.severity}${code}: ${first}`;
}
