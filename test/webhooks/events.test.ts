// Goal: what a subscription sends is what the issue asks: a quota change that moves a
// threshold past usage is a crossing (and back, a clearing); project thresholds follow the
// project's cap and usage only; journal filters keep what they name; the denial digest counts
// refused decisions per kind and scope, at most once per interval, never dry runs.
// Method: a real ledger on each engine with a ManualClock (the digest's minutes), the real
// worker and denial recorder, and a real receiver that verifies every signature.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllowList } from '../../src/webhooks/address.js';
import { recordDenials } from '../../src/webhooks/denials.js';
import { startDeliveries } from '../../src/webhooks/worker.js';
import { engines, ManualClock, openTestLedger, type TestLedger } from '../support/engines.js';
import { waitFor } from '../support/wait.js';
import { Receiver } from './receiver.js';

const gpus = (committed: number) => ({ allocations: [{ kind: 'gpus', committed, reserved: 0 }] });

describe.each(engines)('webhook events on %s', (engine) => {
  let clock: ManualClock;
  let test: TestLedger;
  let receiver: Receiver;
  let stops: (() => Promise<void>)[];

  beforeEach(async () => {
    clock = new ManualClock();
    test = await openTestLedger(engine, clock);
    const { ledger } = test;
    await ledger.putKind('gpus', { displayName: 'GPUs' });
    await ledger.putKind('ips', { displayName: 'IPs' });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.putProject('acme', 'batch', {});
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 10 }, { kind: 'ips', quantity: 10 }]);
    receiver = new Receiver();
    await receiver.up();
    const deliveries = startDeliveries(ledger, { allow: parseAllowList('127.0.0.0/8'), pollMs: 20, backoffMs: 20 });
    stops = [() => deliveries.stop()];
  });

  afterEach(async () => {
    for (const stop of stops) await stop();
    await receiver.down();
    await test.close();
  });

  const subscribe = async (body: Parameters<TestLedger['ledger']['createSubscription']>[1]) => {
    const subscription = await test.ledger.createSubscription('acme', body);
    receiver.secret = subscription.secret;
    return subscription;
  };
  const caughtUp = async (id: string) => {
    const revision = (await test.ledger.readRevision('acme'));
    await waitFor(`revision ${revision}`, async () => ((await test.ledger.getSubscription(id)).deliveries[0]!.revision === revision ? true : undefined));
  };
  const thresholdEvents = () =>
    receiver.unique.filter((event) => event.type.startsWith('threshold.')).map((event) => `${event.type} ${event.data.level}@${event.data.usage}/${event.data.limit}`);

  it('counts a quota change that moves a threshold past usage as a crossing, and back as a clearing', async () => {
    const { ledger } = test;
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'a' }, ...gpus(6) });
    const { id } = await subscribe({ url: receiver.url, thresholds: [{ kind: 'gpus', scope: 'organization', at: [0.8] }] });
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 7 }]);
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 100 }]);
    await caughtUp(id);
    expect(thresholdEvents()).toEqual(['threshold.crossed 5.6@6/7', 'threshold.cleared 80@6/100']);
  });

  it("follows a project's cap and usage, not its siblings'", async () => {
    const { ledger } = test;
    await ledger.setProjectQuotaSet('acme', 'web', [{ kind: 'gpus', cap: 4 }]);
    const { id } = await subscribe({ url: receiver.url, thresholds: [{ kind: 'gpus', scope: 'project', project: 'web', at: [0.5, 1] }] });
    await ledger.createAllocation('acme', 'batch', { resource: { kind: 'vm', id: 'b' }, ...gpus(5) });
    const web = await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'w' }, ...gpus(2) });
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'w2' }, ...gpus(2) });
    await ledger.deleteAllocation('acme', 'web', web.id);
    await caughtUp(id);
    expect(thresholdEvents()).toEqual(['threshold.crossed 2@2/4', 'threshold.crossed 4@4/4', 'threshold.cleared 4@2/4']);
  });

  it('sends only the journal entries its filter names', async () => {
    const { ledger } = test;
    const { id } = await subscribe({ url: receiver.url, journal: { projects: ['web'], kinds: ['ips'] } });
    await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'g' }, ...gpus(1) });
    await ledger.createAllocation('acme', 'batch', { resource: { kind: 'vm', id: 'i' }, allocations: [{ kind: 'ips', committed: 1, reserved: 0 }] });
    const wanted = await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'j' }, allocations: [{ kind: 'ips', committed: 1, reserved: 0 }] });
    await caughtUp(id);
    expect(receiver.unique.map((event) => event.data.subject)).toEqual([wanted.id]);
  });

  it('sends a digest of refusals per kind and scope once its interval has passed; dry runs do not count', async () => {
    const { ledger } = test;
    const recorder = recordDenials(ledger, (error) => {
      throw error;
    });
    stops.unshift(() => recorder.stop());
    const { id } = await subscribe({ url: receiver.url, denials: { intervalSeconds: 120 } });
    await ledger.setProjectQuotaSet('acme', 'web', [{ kind: 'gpus', cap: 1 }]);
    for (let i = 0; i < 3; i += 1) {
      await expect(ledger.createAllocation('acme', 'batch', { resource: { kind: 'vm', id: `o${i}` }, ...gpus(11) })).rejects.toThrow();
    }
    await expect(ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'p' }, ...gpus(2) })).rejects.toThrow();
    await expect(ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'd' }, ...gpus(2) }, { dryRun: true })).rejects.toThrow();
    await recorder.stop(); // Its counts are in the books now.
    clock.advance(60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver.unique).toEqual([]); // Not yet: the interval is two minutes.
    clock.advance(60_000 + 5_000); // The window closes, and the grace for late counts passes.
    await waitFor('the digest', async () => (receiver.unique.length > 0 ? true : undefined));
    const [digest] = receiver.unique;
    expect(digest!.type).toBe('denials.digest');
    expect(digest!.data).toEqual({
      organization: 'acme',
      from: '2026-01-01T00:00:00.000Z',
      to: '2026-01-01T00:02:00.000Z',
      denials: [
        { kind: 'gpus', scope: 'organization', project: null, count: 3 },
        { kind: 'gpus', scope: 'project', project: 'web', count: 1 },
      ],
    });
    clock.advance(240_000);
    await waitFor('the digest window to move', async () => {
      const delivery = (await ledger.getSubscription(id)).deliveries[0]!;
      return delivery.deliveredAt !== null && receiver.unique.length === 1 ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(receiver.unique).toHaveLength(1); // Nothing refused since: nothing sent.
  });
});
