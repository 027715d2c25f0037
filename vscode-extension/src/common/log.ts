/**
 * The "Hotline" output channel (the log): what Hotline did (app started, each patch, compile errors, refusals,
 * crashes), the server's log and ours. The app's own output goes to its terminal (appTerminal.ts).
 */
import * as vscode from 'vscode';

let channel: vscode.OutputChannel | undefined;

export function outputChannel(): vscode.OutputChannel {
    if (!channel) {
        channel = vscode.window.createOutputChannel('Hotline');
    }
    return channel;
}

function stamp(): string {
    return new Date().toISOString().slice(11, 23);
}

export function log(message: string): void {
    outputChannel().appendLine(`[hotline ${stamp()}] ${message}`);
}

export function logError(message: string, err?: unknown): void {
    const detail = err instanceof Error ? `: ${err.message}` : err !== undefined ? `: ${String(err)}` : '';
    outputChannel().appendLine(`[hotline ${stamp()}] ERROR ${message}${detail}`);
}

export function disposeLog(): void {
    channel?.dispose();
    channel = undefined;
}
