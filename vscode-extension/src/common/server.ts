/** Starts, restarts and stops the Hotline language server (`<python> -m hotline.lsp`, stdio). */
import * as path from 'path';
import * as vscode from 'vscode';
import {
    ClientCapabilities,
    CloseAction,
    CloseHandlerResult,
    ErrorAction,
    ErrorHandler,
    ErrorHandlerResult,
    DidChangeConfigurationNotification,
    DynamicFeature,
    ExecuteCommandRequest,
    FeatureState,
    LanguageClient,
    LanguageClientOptions,
    LogMessageNotification,
    LogMessageParams,
    Message,
    MessageActionItem,
    MessageType,
    RevealOutputChannelOn,
    ServerOptions,
    ShowMessageNotification,
    ShowMessageRequest,
    State,
    StaticFeature,
    WorkDoneProgress,
    WorkDoneProgressCreateRequest,
} from 'vscode-languageclient/node';
import { ProgressFeature } from 'vscode-languageclient/lib/common/progress';
import { AppMonitor } from './app';
import { log, logError, outputChannel } from './log';
import { MAX_RESTARTS, RestartBudget, RESTART_WINDOW_MS } from './restartPolicy';
import { isStatusParams, plainMessage, ProgressInfo } from './statusModel';
import { StatusBar } from './status';
import { withTooltip } from './lensTooltip';

export const STATUS_NOTIFICATION = 'hotline/status';
export const OUTPUT_NOTIFICATION = 'hotline/output';

/** Restarts the server after a crash, up to MAX_RESTARTS times within RESTART_WINDOW_MS. */
export class RestartingErrorHandler implements ErrorHandler {
    private readonly budget = new RestartBudget();

    constructor(private readonly onGiveUp: (message: string) => void) {}

    error(error: Error, _message: Message | undefined, count: number | undefined): ErrorHandlerResult {
        logError('connection to the language server', error);
        return { action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
    }

    closed(): CloseHandlerResult {
        if (!this.budget.crashed(Date.now())) {
            const message = `The Hotline language server crashed ${MAX_RESTARTS + 1} times in ${RESTART_WINDOW_MS / 60000} minutes and will not be restarted; see the "Hotline" output, then run "Hotline: Restart Language Server".`;
            this.onGiveUp(message);
            return { action: CloseAction.DoNotRestart, message, handled: true };
        }
        log('the language server exited; restarting it');
        return { action: CloseAction.Restart, handled: true };
    }
}

/**
 * Work-done progress the server creates (its builds) goes to the status bar item instead of the client's
 * default window progress (which would be a second spinner). Replaces vscode-languageclient's ProgressFeature,
 * also after a restart (a request handler set after start() would be overridden by the feature on restart).
 */
class BuildProgressFeature implements StaticFeature {
    constructor(
        private readonly client: LanguageClient,
        private readonly report: (progress: ProgressInfo | undefined) => void,
    ) {}

    getState(): FeatureState {
        return { kind: 'static' };
    }

    fillClientCapabilities(capabilities: ClientCapabilities): void {
        capabilities.window = { ...capabilities.window, workDoneProgress: true };
    }

    initialize(): void {
        this.client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
            const sub = this.client.onProgress(WorkDoneProgress.type, token, (value) => {
                if (value.kind === 'end') {
                    this.report(undefined);
                    sub.dispose();
                } else {
                    this.report({ message: value.message, percentage: value.percentage });
                }
            });
        });
    }

    clear(): void {
        this.report(undefined);
    }
}

class HotlineLanguageClient extends LanguageClient {
    // Called from the base constructor for each built-in feature: leave out the default progress UI.
    override registerFeature(feature: StaticFeature | DynamicFeature<unknown>): void {
        if (feature instanceof ProgressFeature) {
            return;
        }
        super.registerFeature(feature);
    }
}

/** A message of the server as a notification: error, warning or information, without ANSI colours. */
function showServerMessage<T extends MessageActionItem>(type: MessageType, message: string, actions: T[]): Thenable<T | undefined> {
    const text = plainMessage(message);
    switch (type) {
        case MessageType.Error:
            return vscode.window.showErrorMessage(text, ...actions);
        case MessageType.Warning:
            return vscode.window.showWarningMessage(text, ...actions);
        default:
            return vscode.window.showInformationMessage(text, ...actions);
    }
}

/** A window/logMessage of the server into the log, as the client writes it, without ANSI colours. */
function logServerMessage(client: LanguageClient, params: LogMessageParams): void {
    const text = plainMessage(params.message);
    switch (params.type) {
        case MessageType.Error:
            client.error(text, undefined, false);
            break;
        case MessageType.Warning:
            client.warn(text, undefined, false);
            break;
        case MessageType.Info:
            client.info(text, undefined, false);
            break;
        case MessageType.Log:
            outputChannel().appendLine(text);
            break;
        default:
            client.debug(text, undefined, false);
    }
}

export interface ServerConfig {
    python: string;
    cwd: string | undefined;
    initializationOptions: object;
    env?: NodeJS.ProcessEnv;
}

export class HotlineServer implements vscode.Disposable {
    private client: LanguageClient | undefined;

    constructor(
        private readonly status: StatusBar,
        /** The app's terminal, crash notifications, log lines and pid. */
        private readonly app: AppMonitor,
        /** Shows hotline.showLastPatch's Markdown (when a "patched in" lens is clicked). */
        private readonly showMarkdown: (markdown: string) => Promise<void>,
    ) {}

    get running(): boolean {
        return this.client?.state === State.Running;
    }

    async start(config: ServerConfig): Promise<void> {
        await this.stop();
        const serverOptions: ServerOptions = {
            command: config.python,
            args: ['-m', 'hotline.lsp'],
            options: { cwd: config.cwd, env: config.env ?? process.env },
        };
        const clientOptions: LanguageClientOptions = {
            documentSelector: [{ scheme: 'file', language: 'rust' }],
            outputChannel: outputChannel(),
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            initializationOptions: config.initializationOptions,
            errorHandler: new RestartingErrorHandler((message) => {
                this.status.serverDown(message);
                void vscode.window.showErrorMessage(message, 'Show Output').then((choice) => {
                    if (choice) {
                        outputChannel().show(true);
                    }
                });
            }),
            middleware: {
                // Each lens's tooltip (what a click does), which the client's conversion drops.
                provideCodeLenses: async (document, token, next) => {
                    const lenses = await next(document, token);
                    return lenses?.map((lens) => withTooltip(lens as vscode.CodeLens & { data?: unknown }));
                },
                // The code lenses' commands (hotline.showLastPatch, hotline.run, ...) go through here.
                executeCommand: async (command, args, next) => {
                    const result: unknown = await next(command, args);
                    this.app.onCommandResult(command, result);
                    if (command === 'hotline.showLastPatch' && typeof result === 'string') {
                        await this.showMarkdown(result);
                    }
                    return result;
                },
                // Errors and Hotline's rules also go to the log, as `hotline run` prints them.
                handleDiagnostics: (uri, diagnostics, next) => {
                    this.app.onDiagnostics(uri, diagnostics);
                    next(uri, diagnostics);
                },
            },
        };
        const client = new HotlineLanguageClient('hotline', 'Hotline', serverOptions, clientOptions);
        client.registerFeature(new BuildProgressFeature(client, (progress) => this.status.setProgress(progress)));
        client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
            if (isStatusParams(params)) {
                this.app.onStatus(params);
            }
        });
        client.onNotification(OUTPUT_NOTIFICATION, (params: { stream?: unknown; line?: unknown }) => {
            const line = typeof params.line === 'string' ? params.line : String(params.line ?? '');
            this.app.onOutput(typeof params.stream === 'string' ? params.stream : 'stdout', line);
        });
        // In place of the client's own handlers (set before start(), they replace those, also after a restart):
        // the log tells the app monitor of a re-attached app, and no message keeps rustc's colour codes.
        client.onNotification(LogMessageNotification.type, (params) => {
            this.app.onServerLog(params.message);
            logServerMessage(client, params);
        });
        client.onNotification(ShowMessageNotification.type, (params) => {
            void showServerMessage(params.type, params.message, []);
        });
        client.onRequest(ShowMessageRequest.type, async (params) => {
            return (await showServerMessage(params.type, params.message, params.actions ?? [])) ?? null;
        });
        client.onDidChangeState((e) => {
            if (e.newState === State.Stopped) {
                this.status.serverDown('the language server is not running');
                this.app.serverDown();
            } else if (e.newState === State.Running) {
                this.app.onStatus({ state: 'idle' });
            }
        });
        this.client = client;
        log(`starting the language server: ${config.python} -m hotline.lsp (cwd ${config.cwd ?? process.cwd()})`);
        await client.start();
        log('language server started');
    }

    async stop(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        if (client) {
            try {
                await client.stop(10000);
            } catch (err) {
                logError('stopping the language server', err);
            }
        }
    }

    /** New settings the server applies at once (workspace/didChangeConfiguration). */
    updateSettings(settings: object): void {
        const client = this.client;
        if (client && client.state === State.Running) {
            void client.sendNotification(DidChangeConfigurationNotification.type, { settings });
        }
    }

    /** Runs one of the server's commands (workspace/executeCommand). */
    async execute(command: string, args: unknown[] = []): Promise<unknown> {
        const client = this.client;
        if (!client || client.state !== State.Running) {
            throw new Error('the Hotline language server is not running');
        }
        return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
    }

    dispose(): void {
        void this.stop();
    }
}

/** The folder the server starts in: the first workspace folder with a Cargo.toml, else the first folder. */
export function workspaceRoot(): string | undefined {
    const folders = vscode.workspace.workspaceFolders ?? [];
    return folders.length ? folders[0].uri.fsPath : undefined;
}

export function repoHint(extensionPath: string): string | undefined {
    // A development checkout: <repo>/vscode-extension
    const parent = path.dirname(extensionPath);
    return path.basename(extensionPath) === 'vscode-extension' ? parent : undefined;
}
