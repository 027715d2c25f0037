/** Hotline for VS Code: starts the Hotline language server for Rust workspaces and wires its UI. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { disposeLog, log, logError, outputChannel } from './common/log';
import { findPython } from './common/python';
import { HotlineServer, repoHint, workspaceRoot } from './common/server';
import { pythonPathSetting, SECTION, SERVER_SETTING_KEYS, toInitializationOptions } from './common/settings';
import { StatusBar } from './common/status';

const PATCH_URI = vscode.Uri.parse('hotline-patch:/Hotline%20Last%20Patch.md');

let server: HotlineServer | undefined;

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
    log(`using ${choice.python}`);
    const options = toInitializationOptions((k) => config.get(k), vars);
    if (options.crate === undefined && root !== undefined && !fs.existsSync(path.join(root, 'Cargo.toml'))) {
        // The crate is in a subfolder (activation found a Cargo.toml somewhere): use the first one.
        const [manifest] = await vscode.workspace.findFiles('**/Cargo.toml', '**/{target,node_modules}/**', 1);
        if (manifest) {
            options.crate = path.dirname(manifest.fsPath);
            log(`no Cargo.toml in the workspace root; using the crate in ${options.crate} (set "hotline.crate" to choose)`);
        }
    }
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
    const srv = new HotlineServer(status, (markdown) => patchDoc.show(markdown));
    server = srv;
    context.subscriptions.push(status, srv, vscode.workspace.registerTextDocumentContentProvider('hotline-patch', patchDoc));

    const serverCommand = async (command: string): Promise<unknown> => {
        try {
            const result = await srv.execute(command);
            log(`${command}: ${JSON.stringify(result)}`);
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
        vscode.commands.registerCommand('hotline.restartServer', () => startServer(context, status, srv)),
        vscode.workspace.onDidChangeConfiguration((e) => {
            const keys = [...SERVER_SETTING_KEYS, 'pythonPath'];  // not trace.server: the client applies that itself
            if (keys.some((key) => e.affectsConfiguration(`${SECTION}.${key}`))) {
                log('settings changed: restarting the language server (this stops the app)');
                void startServer(context, status, srv);
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
