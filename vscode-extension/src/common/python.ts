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
}

export type Probe = (python: string) => Promise<ProbeResult>;

export type PythonChoice = { python: string; tried: string[] } | { error: string; tried: string[] };

/** Runs `<python> -c "import hotline"`. */
export const probeImportHotline: Probe = (python) =>
    new Promise((resolve) => {
        execFile(python, ['-c', 'import hotline'], { timeout: 20000, windowsHide: true }, (err, _stdout, stderr) => {
            if (!err) {
                resolve({ ok: true });
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
            return { python: opts.configured, tried };
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
            return { python: found, tried };
        }
        tried.push(`${found} (${result.detail ?? 'failed'})`);
    }
    return {
        error: `Hotline: no Python on PATH can import the hotline language server (tried ${tried.join(', ')}). ${fixHint(opts.repoHint)}`,
        tried,
    };
}
