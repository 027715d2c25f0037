import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_RESTARTS, RestartBudget, RESTART_WINDOW_MS } from '../common/restartPolicy';

test('restarts up to the budget, then gives up', () => {
    const budget = new RestartBudget();
    for (let i = 0; i < MAX_RESTARTS; i++) {
        assert.ok(budget.crashed(1000 + i), `crash ${i + 1}`);
    }
    assert.ok(!budget.crashed(2000));
});

test('crashes older than the window are forgotten', () => {
    const budget = new RestartBudget(2, 1000);
    assert.ok(budget.crashed(0));
    assert.ok(budget.crashed(500));
    assert.ok(!budget.crashed(900));
    assert.ok(budget.crashed(2500)); // the crashes at 0, 500 and 900 are more than 1000 ms ago
    assert.equal(RESTART_WINDOW_MS, 180000);
});
