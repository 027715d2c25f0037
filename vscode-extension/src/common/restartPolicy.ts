/** How often a crashed language server is restarted. Pure: no `vscode` import. */

export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 3 * 60 * 1000;

/** Allows `max` restarts within any `windowMs`; the next crash within the window gives up. */
export class RestartBudget {
    private readonly times: number[] = [];

    constructor(
        private readonly max: number = MAX_RESTARTS,
        private readonly windowMs: number = RESTART_WINDOW_MS,
    ) {}

    /** Records a crash at `now`; true when the server should be restarted. */
    crashed(now: number): boolean {
        this.times.push(now);
        while (this.times.length && now - this.times[0] > this.windowMs) {
            this.times.shift();
        }
        return this.times.length <= this.max;
    }
}
