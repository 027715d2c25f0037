/**
 * The app's output in a terminal, "Hotline: <app>": a pseudo-terminal fed by `hotline/output`. A terminal
 * because the app's output is a program's console output (ANSI colours of loggers render, as with
 * `cargo run` in rust-analyzer's Run), kept apart from Hotline's log; the last lines are replayed when it is
 * opened again after being closed.
 */
import * as vscode from 'vscode';
import { LineRing, terminalLine } from './appOutput';

/** How many lines a reopened terminal replays. */
export const REPLAY_LINES = 5000;

export class AppTerminal implements vscode.Disposable {
    private terminal: vscode.Terminal | undefined;
    private writer: vscode.EventEmitter<string> | undefined;
    private opened = false;
    private readonly history = new LineRing(REPLAY_LINES);
    private readonly closeListener: vscode.Disposable;

    constructor(private readonly name: () => string) {
        this.closeListener = vscode.window.onDidCloseTerminal((t) => {
            if (t === this.terminal) {
                this.forget();
            }
        });
    }

    /** A line the app printed. */
    appLine(line: string): void {
        this.write(terminalLine(line));
    }

    /** One of Hotline's own lines (app started, patched, exited), dimmed. */
    hotlineLine(line: string): void {
        this.write(terminalLine(line, true));
    }

    /** Shows the terminal (creating it, with the lines so far, when there is none). */
    reveal(preserveFocus = true): void {
        this.ensure().show(preserveFocus);
    }

    get terminalName(): string | undefined {
        return this.terminal?.name;
    }

    private write(data: string): void {
        this.history.push(data);
        if (this.opened) {
            this.writer?.fire(data);
        }
    }

    private ensure(): vscode.Terminal {
        const name = this.name();
        if (this.terminal && this.terminal.name !== name) {
            // Another app (the crate or bin setting changed): a terminal with its name.
            this.terminal.dispose();
            this.forget();
        }
        if (!this.terminal) {
            const writer = new vscode.EventEmitter<string>();
            const pty: vscode.Pseudoterminal = {
                onDidWrite: writer.event,
                open: () => {
                    this.opened = true;
                    writer.fire(this.history.all.join(''));
                },
                close: () => this.forget(),
            };
            this.writer = writer;
            this.terminal = vscode.window.createTerminal({ name, pty, iconPath: new vscode.ThemeIcon('flame'), isTransient: true });
        }
        return this.terminal;
    }

    private forget(): void {
        this.writer?.dispose();
        this.writer = undefined;
        this.terminal = undefined;
        this.opened = false;
    }

    dispose(): void {
        this.closeListener.dispose();
        this.terminal?.dispose();
        this.forget();
    }
}
