/**
 * Finds the Python that runs the language server: `hotline.pythonPath`, else the first of python3/python
 * on PATH that can `import hotline`. Pure node (no `vscode` import): the probe and the file checks are
 * injectable so unit tests need no real interpreter.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const CANDIDATE_NAMES: readonly string[] = ['python3', 'python'];

export interface ProbeResult {
    ok: boolean;
    /** Why it failed: the interpreter's stderr's last line, or the spawn error. */
    detail?: string;
    /** What the interpreter said about itself and the hotline package it imported (when ok). */
    info?: PythonInfo;
}

/** Which Python and which `hotline` package run the language server (logged at each start). */
export interface PythonInfo {
    /** `sys.executable` */
    executable?: string;
    /** `3.11.7` */
    version?: string;
    /** `hotline.__file__` */
    hotlineFile?: string;
    /** The `hotline-reload` distribution's version, when it is installed (not only on sys.path). */
    hotlineVersion?: string;
}

/** Imports hotline and prints one JSON line about the interpreter and the package. */
export const PROBE_SCRIPT = [
    'import json, sys, hotline',
    'try:',
    '    import importlib.metadata as m; v = m.version("hotline-reload")',
    'except Exception:',
    '    v = None',
    'print(json.dumps({"executable": sys.executable, "version": sys.version.split()[0], "hotlineFile": hotline.__file__, "hotlineVersion": v}))',
].join('\n');

/** The probe's JSON line, or undefined when it is not one (the import worked all the same). */
export function parseProbeOutput(stdout: string): PythonInfo | undefined {
    const line = stdout.trim().split(/\r?\n/).pop() ?? '';
    try {
        const raw: unknown = JSON.parse(line);
        if (raw === null || typeof raw !== 'object') {
            return undefined;
        }
        const r = raw as Record<string, unknown>;
        const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
        return { executable: str(r.executable), version: str(r.version), hotlineFile: str(r.hotlineFile), hotlineVersion: str(r.hotlineVersion) };
    } catch {
        return undefined;
    }
}

/** The log line: `/usr/bin/python3 (Python 3.11.7), hotline-reload 0.1.0 from /src/hotline/server/hotline`. */
export function describePython(python: string, info: PythonInfo | undefined): string {
    if (!info) {
        return python;
    }
    const exe = info.executable && info.executable !== python ? ` = ${info.executable}` : '';
    const version = info.version ? ` (Python ${info.version})` : '';
    const pkg = info.hotlineVersion ? `hotline-reload ${info.hotlineVersion}` : 'hotline (no installed distribution)';
    const from = info.hotlineFile ? ` from ${path.dirname(info.hotlineFile)}` : '';
    return `${python}${exe}${version}, ${pkg}${from}`;
}

export type Probe = (python: string) => Promise<ProbeResult>;

export type PythonChoice = { python: string; tried: string[]; info?: PythonInfo } | { error: string; tried: string[] };

/** Runs `<python> -c "import hotline; …"` (PROBE_SCRIPT). */
export const probeImportHotline: Probe = (python) =>
    new Promise((resolve) => {
        execFile(python, ['-c', PROBE_SCRIPT], { timeout: 20000, windowsHide: true }, (err, stdout, stderr) => {
            if (!err) {
                const info = parseProbeOutput(String(stdout));
                resolve(info ? { ok: true, info } : { ok: true });
                return;
            }
            const lines = String(stderr).trim().split(/\r?\n/).filter((l) => l.trim() !== '');
            resolve({ ok: false, detail: lines.length ? lines[lines.length - 1] : err.message });
        });
    });

export function isExecutableFile(p: string): boolean {
    try {
        fs.accessSync(p, fs.constants.X_OK);
        return fs.statSync(p).isFile();
    } catch {
        return false;
    }
}

/** The first file called `name` on `pathEnv` (with `.exe` on Windows), or undefined. */
export function whichOnPath(
    name: string,
    pathEnv: string | undefined,
    isExecutable: (p: string) => boolean = isExecutableFile,
    platform: NodeJS.Platform = process.platform,
): string | undefined {
    const sep = platform === 'win32' ? ';' : ':';
    const names = platform === 'win32' ? [`${name}.exe`, name] : [name];
    for (const dir of (pathEnv ?? '').split(sep)) {
        if (!dir) {
            continue;
        }
        for (const n of names) {
            const candidate = path.join(dir, n);
            if (isExecutable(candidate)) {
                return candidate;
            }
        }
    }
    return undefined;
}

/** How to fix a missing `hotline` package; `repoHint` is where the Hotline checkout is, when known. */
export function fixHint(repoHint?: string): string {
    const repo = repoHint ?? '<path to the hotline repository>';
    return `Install it with "pip install -e ${repo}" for that Python, or set "hotline.pythonPath" to a Python that can "import hotline".`;
}

/** The choice, with the probe's info when it gave some (no `info: undefined` key otherwise). */
function withInfo(choice: { python: string; tried: string[] }, info: PythonInfo | undefined): PythonChoice {
    return info ? { ...choice, info } : choice;
}

export async function findPython(opts: {
    configured?: string;
    pathEnv?: string;
    probe?: Probe;
    isExecutable?: (p: string) => boolean;
    platform?: NodeJS.Platform;
    repoHint?: string;
}): Promise<PythonChoice> {
    const probe = opts.probe ?? probeImportHotline;
    const tried: string[] = [];
    if (opts.configured) {
        const result = await probe(opts.configured);
        tried.push(`${opts.configured}${result.ok ? '' : ` (${result.detail ?? 'failed'})`}`);
        if (result.ok) {
            return withInfo({ python: opts.configured, tried }, result.info);
        }
        return {
            error: `Hotline: "hotline.pythonPath" is ${opts.configured}, which cannot import hotline (${result.detail ?? 'failed'}). ${fixHint(opts.repoHint)}`,
            tried,
        };
    }
    for (const name of CANDIDATE_NAMES) {
        const found = whichOnPath(name, opts.pathEnv, opts.isExecutable, opts.platform);
        if (!found) {
            tried.push(`${name} (not on PATH)`);
            continue;
        }
        const result = await probe(found);
        if (result.ok) {
            tried.push(found);
            return withInfo({ python: found, tried }, result.info);
        }
        tried.push(`${found} (${result.detail ?? 'failed'})`);
    }
    return {
        error: `Hotline: no Python on PATH can import the hotline language server (tried ${tried.join(', ')}). ${fixHint(opts.repoHint)}`,
        tried,
    };
}
