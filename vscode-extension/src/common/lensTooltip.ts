/**
 * The server sends each code lens's tooltip twice: as `Command.tooltip` (LSP 3.18) and in the
 * lens's `data`, because vscode-languageclient drops `Command.tooltip` when it converts a lens.
 * This puts it back on the converted lens's command (no `vscode` import: unit-testable).
 */
export interface LensLike {
    command?: { title: string; tooltip?: string };
    data?: unknown;
}

export function withTooltip<T extends LensLike>(lens: T): T {
    const data = lens.data as { tooltip?: unknown } | undefined;
    if (lens.command && lens.command.tooltip === undefined && typeof data?.tooltip === 'string') {
        lens.command.tooltip = data.tooltip;
    }
    return lens;
}
