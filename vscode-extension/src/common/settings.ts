/**
 * Settings: the `hotline.*` configuration of VS Code -> the server's initializationOptions
 * (schemas/settings.schema.json). Pure: no `vscode` import, so unit tests run in plain node.
 */

/** The server's settings (initializationOptions), see schemas/settings.schema.json. */
export interface ServerSettings {
    crate?: string;
    bin?: string | null;
    appArgs?: string[];
    patchOnSave?: boolean;
    env?: Record<string, string>;
    features?: string[];
    profile?: string;
    linker?: string;
    allowLayoutChanges?: string[];
    entryJumps?: boolean;
    rustcWarnings?: boolean;
    speculativeBuilds?: boolean;
    speculativeDelayMs?: number;
    speculativeDiagnostics?: boolean;
}

/** Keys passed to the server; each is contributed as `hotline.<key>` in package.json. */
export const SERVER_SETTING_KEYS: readonly (keyof ServerSettings)[] = [
    'crate', 'bin', 'appArgs', 'patchOnSave', 'env', 'features', 'profile', 'linker', 'allowLayoutChanges',
    'entryJumps', 'rustcWarnings', 'speculativeBuilds', 'speculativeDelayMs', 'speculativeDiagnostics',
];

/**
 * Settings the server applies at once (workspace/didChangeConfiguration): changing only these does not restart
 * the language server (which would stop the app). The others shape the build: the server restarts.
 */
export const LIVE_SETTING_KEYS: readonly (keyof ServerSettings)[] = [
    'rustcWarnings', 'patchOnSave', 'allowLayoutChanges', 'speculativeBuilds', 'speculativeDelayMs',
    'speculativeDiagnostics',
];

/** What a settings change needs: nothing, a didChangeConfiguration to the server, or a server restart. */
export function settingsChangeAction(affected: (key: string) => boolean): 'none' | 'notify' | 'restart' {
    const restartKeys = [...SERVER_SETTING_KEYS.filter((k) => !LIVE_SETTING_KEYS.includes(k)), 'pythonPath'];
    if (restartKeys.some(affected)) {
        return 'restart';
    }
    return LIVE_SETTING_KEYS.some(affected) ? 'notify' : 'none';
}

const LINKERS = ['default', 'lld', 'mold', 'bfd', 'gold'];

/** The string entries of an array setting, or undefined when it is not an array. */
function strings(value: unknown): string[] | undefined {
    return Array.isArray(value) ? value.filter((a): a is string => typeof a === 'string') : undefined;
}

/** Keys only the extension reads (not sent to the server). */
export const CLIENT_SETTING_KEYS: readonly string[] = ['pythonPath', 'trace.server'];

/** The section all settings live under. */
export const SECTION = 'hotline';

/** Replaces `${workspaceFolder}`, `${userHome}` and `${env:NAME}` in a setting's value. */
export function substitute(value: string, vars: { workspaceFolder?: string; userHome?: string; env?: NodeJS.ProcessEnv }): string {
    return value.replace(/\$\{(workspaceFolder|userHome|env:([A-Za-z_][A-Za-z0-9_]*))\}/g, (whole, name: string, envName?: string) => {
        if (envName !== undefined) {
            return vars.env?.[envName] ?? '';
        }
        const replacement = name === 'workspaceFolder' ? vars.workspaceFolder : vars.userHome;
        return replacement ?? whole;
    });
}

/**
 * Builds initializationOptions from a getter of `hotline.<key>` values. Leaves out unset and empty values
 * (the server's schema rejects an empty `crate`/`bin`) and entries of the wrong type, so that a bad user
 * setting degrades to the server's default instead of making the server refuse all settings.
 */
export function toInitializationOptions(
    get: (key: string) => unknown,
    vars: { workspaceFolder?: string; userHome?: string; env?: NodeJS.ProcessEnv } = {},
): ServerSettings {
    const out: ServerSettings = {};
    const crate = get('crate');
    if (typeof crate === 'string' && crate.trim() !== '') {
        out.crate = substitute(crate.trim(), vars);
    }
    const bin = get('bin');
    if (typeof bin === 'string' && bin.trim() !== '') {
        out.bin = bin.trim();
    }
    const appArgs = get('appArgs');
    if (Array.isArray(appArgs)) {
        out.appArgs = appArgs.filter((a): a is string => typeof a === 'string').map((a) => substitute(a, vars));
    }
    for (const key of ['patchOnSave', 'entryJumps', 'rustcWarnings', 'speculativeBuilds', 'speculativeDiagnostics'] as const) {
        const flag = get(key);
        if (typeof flag === 'boolean') {
            out[key] = flag;
        }
    }
    const delay = get('speculativeDelayMs');
    if (typeof delay === 'number' && Number.isInteger(delay) && delay >= 0) {
        out.speculativeDelayMs = delay;
    }
    for (const key of ['features', 'allowLayoutChanges'] as const) {
        const list = strings(get(key));
        if (list !== undefined) {
            out[key] = list;
        }
    }
    const profile = get('profile');
    if (typeof profile === 'string' && profile.trim() !== '') {
        out.profile = profile.trim();
    }
    const linker = get('linker');
    if (typeof linker === 'string' && LINKERS.includes(linker)) {
        out.linker = linker;
    }
    const env = get('env');
    if (env !== null && typeof env === 'object' && !Array.isArray(env)) {
        const entries = Object.entries(env as Record<string, unknown>).filter(
            (e): e is [string, string] => typeof e[1] === 'string',
        );
        out.env = Object.fromEntries(entries.map(([k, v]) => [k, substitute(v, vars)]));
    }
    return out;
}

/** The configured interpreter, or undefined when the setting is empty. */
export function pythonPathSetting(
    get: (key: string) => unknown,
    vars: { workspaceFolder?: string; userHome?: string; env?: NodeJS.ProcessEnv } = {},
): string | undefined {
    const value = get('pythonPath');
    if (typeof value !== 'string' || value.trim() === '') {
        return undefined;
    }
    return substitute(value.trim(), vars);
}
