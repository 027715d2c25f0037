/** The "Hotline" output channel: the app's stdout/stderr (hotline/output), the server's log and ours. */
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

/** One line the app wrote, as is. */
export function appLine(line: string): void {
    outputChannel().appendLine(line);
}

export function disposeLog(): void {
    channel?.dispose();
    channel = undefined;
}
