/** Hotline for VS Code: starts the Hotline language server for Rust workspaces and wires its UI. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { AppMonitor } from './common/app';
import { appName } from './common/appOutput';
import { disposeLog, log, logError, outputChannel } from './common/log';
import { describePython, findPython } from './common/python';
import { HotlineServer, repoHint, workspaceRoot } from './common/server';
import { LIVE_SETTING_KEYS, pythonPathSetting, SECTION, ServerSettings, settingsChangeAction, toInitializationOptions } from './common/settings';
import { StatusBar } from './common/status';

const PATCH_URI = vscode.Uri.parse('hotline-patch:/Hotline%20Last%20Patch.md');

let server: HotlineServer | undefined;
/** The crate the server runs (for the app terminal's name). */
let crateDir: string | undefined;
/** The settings the server was last given (initializationOptions, then didChangeConfiguration). */
let sentOptions: ServerSettings | undefined;

/** The app's name: the `hotline.bin` setting, else the crate's package name. */
function currentAppName(): string | undefined {
    const bin = vscode.workspace.getConfiguration(SECTION).get<string | null>('bin');
    let manifest: string | undefined;
    try {
        manifest = crateDir ? fs.readFileSync(path.join(crateDir, 'Cargo.toml'), 'utf8') : undefined;
    } catch {
        manifest = undefined;
    }
    return appName(manifest, typeof bin === 'string' && bin.trim() !== '' ? bin.trim() : undefined);
}

/** A read-only document with the last patch's Markdown (no "save?" prompt, unlike an untitled one). */
class PatchDocument implements vscode.TextDocumentContentProvider {
    private readonly changed = new vscode.EventEmitter<vscode.Uri>();
    readonly onDidChange = this.changed.event;
    private markdown = 'No patch applied yet.\n';

    provideTextDocumentContent(): string {
        return this.markdown;
    }

    async show(markdown: string): Promise<void> {
        this.markdown = markdown;
        this.changed.fire(PATCH_URI);
        try {
            await vscode.commands.executeCommand('markdown.showPreview', PATCH_URI);
        } catch {
            const doc = await vscode.workspace.openTextDocument(PATCH_URI);
            await vscode.window.showTextDocument(doc, { preview: true });
        }
    }
}

async function startServer(context: vscode.ExtensionContext, status: StatusBar, srv: HotlineServer): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const root = workspaceRoot();
    const vars = { workspaceFolder: root, userHome: os.homedir(), env: process.env };
    const choice = await findPython({
        configured: pythonPathSetting((k) => config.get(k), vars),
        pathEnv: process.env.PATH,
        repoHint: repoHint(context.extensionPath),
    });
    if ('error' in choice) {
        logError(choice.error);
        status.serverDown(choice.error);
        const pick = await vscode.window.showErrorMessage(choice.error, 'Open Settings', 'Show Output');
        if (pick === 'Open Settings') {
            await vscode.commands.executeCommand('workbench.action.openSettings', 'hotline.pythonPath');
        } else if (pick === 'Show Output') {
            outputChannel().show(true);
        }
        return;
    }
    log(`language server's Python: ${describePython(choice.python, choice.info)}`);
    const options = toInitializationOptions((k) => config.get(k), vars);
    if (options.crate === undefined && root !== undefined && !fs.existsSync(path.join(root, 'Cargo.toml'))) {
        // The crate is in a subfolder (activation found a Cargo.toml somewhere): use the first one.
        const [manifest] = await vscode.workspace.findFiles('**/Cargo.toml', '**/{target,node_modules}/**', 1);
        if (manifest) {
            options.crate = path.dirname(manifest.fsPath);
            log(`no Cargo.toml in the workspace root; using the crate in ${options.crate} (set "hotline.crate" to choose)`);
        }
    }
    crateDir = options.crate !== undefined ? path.resolve(root ?? process.cwd(), options.crate) : root;
    sentOptions = options;
    try {
        await srv.start({ python: choice.python, cwd: root, initializationOptions: options });
    } catch (err) {
        logError('starting the language server', err);
        status.serverDown(`the language server failed to start: ${err instanceof Error ? err.message : String(err)}`);
    }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    const status = new StatusBar();
    const patchDoc = new PatchDocument();
    const app = new AppMonitor(status, currentAppName);
    const srv = new HotlineServer(status, app, (markdown) => patchDoc.show(markdown));
    server = srv;
    context.subscriptions.push(status, app, srv, vscode.workspace.registerTextDocumentContentProvider('hotline-patch', patchDoc));

    const serverCommand = async (command: string): Promise<unknown> => {
        try {
            const result = await srv.execute(command);
            log(`${command}: ${JSON.stringify(result)}`);
            app.onCommandResult(command, result);
            return result;
        } catch (err) {
            // The server reports its own failures (status bar + message); this is the client side failing.
            logError(command, err);
            status.serverDown(err instanceof Error ? err.message : String(err));
            return undefined;
        }
    };

    context.subscriptions.push(
        vscode.commands.registerCommand('hotline.runApp', () => serverCommand('hotline.run')),
        vscode.commands.registerCommand('hotline.stopApp', () => serverCommand('hotline.stop')),
        vscode.commands.registerCommand('hotline.restartApp', () => serverCommand('hotline.restart')),
        vscode.commands.registerCommand('hotline.forceRebuild', () => serverCommand('hotline.rebuild')),
        vscode.commands.registerCommand('hotline.openLastPatch', async () => {
            const markdown = await serverCommand('hotline.showLastPatch');
            if (typeof markdown === 'string') {
                await patchDoc.show(markdown);
            }
        }),
        vscode.commands.registerCommand('hotline.showOutput', () => outputChannel().show(true)),
        vscode.commands.registerCommand('hotline.showAppOutput', () => app.terminal.reveal(false)),
        vscode.commands.registerCommand('hotline.attachDebugger', () => app.attachDebugger()),
        vscode.commands.registerCommand('hotline.restartServer', () => startServer(context, status, srv)),
        vscode.workspace.onDidChangeConfiguration((e) => {
            // (Not trace.server: the client applies that itself.)
            const action = settingsChangeAction((key) => e.affectsConfiguration(`${SECTION}.${key}`));
            if (action === 'restart') {
                // A new server would re-attach to the app (as after a window reload), which runs with the old
                // settings (arguments, environment): stop it, so that the next Run uses the new ones.
                log('settings changed: stopping the app and restarting the language server');
                void (async () => {
                    if (srv.running) {
                        await serverCommand('hotline.stop');
                    }
                    await startServer(context, status, srv);
                })();
            } else if (action === 'notify') {
                const config = vscode.workspace.getConfiguration(SECTION);
                const vars = { workspaceFolder: workspaceRoot(), userHome: os.homedir(), env: process.env };
                const options = toInitializationOptions((k) => config.get(k), vars);
                // The crate as the server has it (also when found in a subfolder): only live settings change.
                delete options.crate;
                if (sentOptions?.crate !== undefined) {
                    options.crate = sentOptions.crate;
                }
                sentOptions = options;
                const changed = LIVE_SETTING_KEYS.filter((key) => e.affectsConfiguration(`${SECTION}.${key}`));
                log(`settings changed (${changed.join(', ')}): applied at once, the app goes on`);
                srv.updateSettings(options);
            }
        }),
    );
    await startServer(context, status, srv);
}

export async function deactivate(): Promise<void> {
    const srv = server;
    server = undefined;
    await srv?.stop();
    disposeLog();
}
