import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LensLike, withTooltip } from '../common/lensTooltip';

test('a lens gets the tooltip the server put in its data', () => {
    const lens: LensLike = {
        command: { title: '⚠ restart required (HL1002): layout change' },
        data: { tooltip: 'Click to restart the app (full rebuild): struct Player: size 32 → 40' },
    };
    assert.equal(
        withTooltip(lens).command?.tooltip,
        'Click to restart the app (full rebuild): struct Player: size 32 → 40',
    );
});

test('a lens without one is left alone', () => {
    const plain: LensLike = { command: { title: 'patched in 80ms' } };
    assert.equal(withTooltip(plain).command?.tooltip, undefined);
    const noCommand: LensLike = { data: { tooltip: 'x' } };
    assert.equal(withTooltip(noCommand).command, undefined);
});
