/** The status bar item, driven by hotline/status notifications and build progress. */
import * as vscode from 'vscode';
import { formatStatus, ProgressInfo, serverDownStatus, StatusParams, StatusView } from './statusModel';

export class StatusBar implements vscode.Disposable {
    private readonly item: vscode.StatusBarItem;
    private last: StatusParams = { state: 'idle' };
    private progress: ProgressInfo | undefined;
    private pid: number | undefined;
    private down = false;

    constructor() {
        this.item = vscode.window.createStatusBarItem('hotline.status', vscode.StatusBarAlignment.Left, 50);
        this.item.name = 'Hotline';
        this.render(formatStatus(this.last));
        this.item.show();
    }

    get state(): StatusParams {
        return this.last;
    }

    update(params: StatusParams): void {
        if (params.state !== 'building') {
            this.progress = undefined;
        }
        this.last = params;
        this.down = false;
        this.render(formatStatus(params, this.progress, this.pid));
    }

    /** The app's pid, shown in the tooltip (undefined: no app). */
    setPid(pid: number | undefined): void {
        if (pid !== this.pid) {
            this.pid = pid;
            if (!this.down) {
                this.render(formatStatus(this.last, this.progress, pid));
            }
        }
    }

    /** A build's `$/progress` report (only shown while building). */
    setProgress(progress: ProgressInfo | undefined): void {
        this.progress = progress;
        if (this.last.state === 'building' && !this.down) {
            this.render(formatStatus(this.last, progress, this.pid));
        }
    }

    serverDown(reason: string): void {
        this.down = true;
        this.render(serverDownStatus(reason));
    }

    private render(view: StatusView): void {
        this.item.text = view.text;
        this.item.tooltip = view.tooltip;
        this.item.command = view.command;
        this.item.backgroundColor =
            view.severity === 'error'
                ? new vscode.ThemeColor('statusBarItem.errorBackground')
                : view.severity === 'warning'
                  ? new vscode.ThemeColor('statusBarItem.warningBackground')
                  : undefined;
        this.item.accessibilityInformation = { label: view.tooltip.split('\n')[0] };
    }

    dispose(): void {
        this.item.dispose();
    }
}
