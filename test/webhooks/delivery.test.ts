// Goal: webhook deliveries are at least once, in revision order, signed per Standard Webhooks,
// derived from the journal (so nothing is sent for a change that did not commit), retried with
// backoff while the receiver is down, marked failing after the bound and resumed from where
// they stopped; and a target's address is checked at delivery time.
// Method: a real ledger on each engine, the real delivery worker, and a real HTTP receiver
// (receiver.ts) that verifies signatures with the library's verifier and goes down and up.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllowList, noneAllowed } from '../../src/webhooks/address.js';
import { startDeliveries, type DeliveryOptions } from '../../src/webhooks/worker.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { waitFor } from '../support/wait.js';
import { Receiver } from './receiver.js';

const loopback = parseAllowList('127.0.0.0/8');
const line = (committed: number) => ({ allocations: [{ kind: 'gpus', committed, reserved: 0 }] });

async function seed(ledger: Ledger) {
  await ledger.putKind('gpus', { displayName: 'GPUs' });
  await ledger.putOrganization('acme', {});
  await ledger.putProject('acme', 'web', {});
  await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 10 }]);
}

describe.each(engines)('webhook deliveries on %s', (engine) => {
  let test: TestLedger;
  let receiver: Receiver;
  let stops: (() => Promise<void>)[] = [];
  const start = (options: Partial<DeliveryOptions> = {}) => {
    const worker = startDeliveries(test.ledger, { allow: loopback, backoffMs: 20, backoffMaxMs: 100, pollMs: 50, timeoutMs: 2000, ...options });
    stops.push(() => worker.stop());
    return worker;
  };

  beforeEach(async () => {
    test = await openTestLedger(engine);
    await seed(test.ledger);
    receiver = new Receiver();
    stops = [];
  });

  afterEach(async () => {
    for (const stop of stops) await stop();
    await receiver.down();
    await test.close();
  });

  it('delivers every entry and threshold event in order, once each after deduplication, across the receiver being down', async () => {
    const { ledger } = test;
    await receiver.up();
    const subscription = await ledger.createSubscription('acme', {
      url: receiver.url,
      journal: {},
      thresholds: [{ kind: 'gpus', scope: 'organization', at: [0.5, 1] }],
    });
    receiver.secret = subscription.secret;
    await receiver.down(); // Down before anything is sent: every delivery fails at first.
    start({ attemptsMax: 1000 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push((await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: `vm-${i}` }, ...line(2) })).id);
    await expect(ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'over' }, ...line(1) })).rejects.toThrow(/quota/);
    await ledger.deleteAllocation('acme', 'web', ids[0]!);
    const failing = await waitFor('a failed attempt', async () => {
      const [delivery] = (await ledger.getSubscription(subscription.id)).deliveries;
      return delivery!.attempts >= 2 ? delivery : undefined;
    });
    expect(failing.state).toBe('retrying');
    expect(failing.lastError).toMatch(/ECONNREFUSED/);
    await receiver.up();
    const revision = (await ledger.readJournal('acme', 0, 1000)).at(-1)!.revision;
    await waitFor('every event', async () => ((await ledger.getSubscription(subscription.id)).deliveries[0]!.revision === revision ? true : undefined));
    expect(receiver.forged).toEqual([]);
    const events = receiver.unique;
    const entries = events.filter((event) => event.type === 'journal.entry').map((event) => event.data.revision as number);
    // Quota set at subscription: revisions after it, each once, in order; the refusal sent nothing.
    expect(entries).toEqual(Array.from({ length: 6 }, (_, i) => revision - 5 + i));
    const thresholds = events.filter((event) => event.type.startsWith('threshold.')).map((event) => [event.type, event.data.level, event.data.usage]);
    expect(thresholds).toEqual([
      ['threshold.crossed', 5, 6],
      ['threshold.crossed', 10, 10],
      ['threshold.cleared', 10, 8],
    ]);
    // In revision order: each threshold event comes right after its entry's.
    const order = events.map((event) => event.data.revision as number);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    const state = await ledger.getSubscription(subscription.id);
    expect(state.state).toBe('active');
    expect(state.deliveries[0]).toMatchObject({ state: 'active', attempts: 0, lastError: null });
  });

  it('marks a subscription failing after its attempts, and resumes from where it stopped', async () => {
    const { ledger } = test;
    await receiver.up();
    receiver.status = 500;
    const subscription = await ledger.createSubscription('acme', { url: receiver.url, journal: { actions: ['allocation.created'] } });
    receiver.secret = subscription.secret;
    start({ attemptsMax: 3 });
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'a' }, ...line(1) });
    const failing = await waitFor('failing', async () => {
      const found = await ledger.getSubscription(subscription.id);
      return found.state === 'failing' ? found : undefined;
    });
    expect(failing.deliveries[0]).toMatchObject({ state: 'failing', attempts: 3, lastError: 'HTTP 500' });
    expect(await ledger.failingSubscriptions()).toBe(1);
    // Failing: nothing more is attempted, though more happens.
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'b' }, ...line(1) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await ledger.getSubscription(subscription.id)).deliveries[0]!.attempts).toBe(3);
    receiver.status = 204;
    const resumed = await ledger.resumeSubscription(subscription.id);
    expect(resumed.state).toBe('active');
    await waitFor('both entries', async () => (receiver.unique.length === 2 ? true : undefined));
    expect(receiver.unique.map((event) => event.data.subject)).toHaveLength(2);
    expect(receiver.unique.map((event) => event.data.action)).toEqual(['allocation.created', 'allocation.created']);
  });

  it('checks the target at delivery time: a loopback target not allowed is never sent to', async () => {
    const { ledger } = test;
    await receiver.up();
    const subscription = await ledger.createSubscription('acme', { url: receiver.url, journal: {} });
    start({ allow: noneAllowed, attemptsMax: 2 });
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'a' }, ...line(1) });
    const failing = await waitFor('failing', async () => {
      const found = await ledger.getSubscription(subscription.id);
      return found.state === 'failing' ? found : undefined;
    });
    expect(failing.deliveries[0]!.lastError).toMatch(/loopback/);
    expect(receiver.received).toEqual([]);
    expect(receiver.forged).toEqual([]);
  });

  it.each([
    ['a redirect, which is not followed', { status: 302 }, /HTTP 302 \(redirects are not followed\)/],
    ['an answer slower than the timeout', { delayMs: 1000 }, /no answer within 200 ms/],
  ])('counts %s as a failure', async (_name, answer, error) => {
    const { ledger } = test;
    await receiver.up();
    Object.assign(receiver, answer);
    const subscription = await ledger.createSubscription('acme', { url: receiver.url, journal: {} });
    receiver.secret = subscription.secret;
    start({ attemptsMax: 1, timeoutMs: 200 });
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'a' }, ...line(1) });
    const failing = await waitFor('failing', async () => {
      const found = await ledger.getSubscription(subscription.id);
      return found.state === 'failing' ? found : undefined;
    });
    expect(failing.deliveries[0]!.lastError).toMatch(error);
  });

  it("one organization's slow receiver does not hold up another organization's deliveries", async () => {
    const { ledger } = test;
    await ledger.putOrganization('slow', {});
    await ledger.putProject('slow', 'web', {});
    await ledger.setQuotas('slow', [{ kind: 'gpus', quantity: 1000 }]);
    const slow = new Receiver();
    await slow.up();
    stops.push(() => slow.down());
    slow.delayMs = 900;
    slow.secret = (await ledger.createSubscription('slow', { url: slow.url, journal: {} })).secret;
    await receiver.up();
    receiver.secret = (await ledger.createSubscription('acme', { url: receiver.url, journal: {} })).secret;
    start({ timeoutMs: 5000 });
    for (let i = 0; i < 20; i += 1) await ledger.createAllocation('slow', 'web', { resource: { kind: 'vm', id: `s-${i}` }, ...line(1) });
    await waitFor('the slow receiver busy', async () => (slow.received.length > 0 ? true : undefined));
    const committed = performance.now();
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'victim' }, ...line(1) });
    await waitFor('the other organization delivered', async () => (receiver.received.length > 0 ? true : undefined), 10_000);
    // A lease works at most two seconds before it goes back: far less than the slow one's 20 × 0.9 s.
    expect(performance.now() - committed).toBeLessThan(10_000);
    expect(slow.received.length).toBeLessThan(20);
  });

  it('stops sending to a subscription deleted mid-delivery within about a second', async () => {
    const { ledger } = test;
    await receiver.up();
    receiver.delayMs = 100;
    const subscription = await ledger.createSubscription('acme', { url: receiver.url, journal: {} });
    receiver.secret = subscription.secret;
    for (let i = 0; i < 40; i += 1) await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: `d-${i}` }, ...line(0) });
    start();
    await waitFor('deliveries under way', async () => (receiver.received.length >= 2 ? true : undefined));
    await ledger.deleteSubscription(subscription.id);
    const atDelete = receiver.received.length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // A second's worth at 0.1 s each, and the one in flight: not the fifteen a second and a half would send.
    expect(receiver.received.length - atDelete).toBeLessThanOrEqual(12);
    expect(receiver.received.length).toBeLessThan(40);
  });

  it('a subscription for every organization follows one that existed from now, and one made later from its first entry', async () => {
    const { ledger } = test;
    await receiver.up();
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'before' }, ...line(6) });
    const subscription = await ledger.createSubscription(null, { url: receiver.url, journal: { actions: ['allocation.created'] }, thresholds: [{ kind: 'gpus', scope: 'organization', at: [0.5] }] });
    receiver.secret = subscription.secret;
    start();
    await waitFor("acme's cursor", async () => ((await ledger.getSubscription(subscription.id)).deliveries.length === 1 ? true : undefined));
    await ledger.putOrganization('later', {});
    await ledger.putProject('later', 'web', {});
    await ledger.setQuotas('later', [{ kind: 'gpus', quantity: 10 }]);
    await ledger.createAllocation('later', 'web', { resource: { kind: 'vm', id: 'l' }, ...line(6) });
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'after' }, ...line(1) });
    await waitFor('both organizations', async () => (receiver.unique.length === 3 ? true : undefined));
    const seen = receiver.unique.map((event) => `${event.data.organization} ${event.type}${event.type === 'journal.entry' ? ` ${event.data.subject === null ? '' : 'allocation'}` : ''}`);
    // acme: from the moment its cursor was made (already above 50 %: nothing crossed); later:
    // from its first entry, so its crossing is sent.
    expect(seen.sort()).toEqual(['acme journal.entry allocation', 'later journal.entry allocation', 'later threshold.crossed']);
  });

  it('two workers on one database deliver each cursor in order, never both at once', async () => {
    const { ledger } = test;
    await receiver.up();
    const subscription = await ledger.createSubscription('acme', { url: receiver.url, journal: {} });
    receiver.secret = subscription.secret;
    receiver.delayMs = 5;
    start();
    start();
    for (let i = 0; i < 20; i += 1) await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: `vm-${i}` }, ...line(0) });
    await waitFor('20 entries', async () => (receiver.unique.length === 20 ? true : undefined));
    const revisions = receiver.received.map((event) => event.data.revision as number);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
  });
});
