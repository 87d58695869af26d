// Goal: a host list is tried in order, and a host that cannot be used — a name that does not
// resolve, a port that refuses — is passed over for the next, as libpq does, instead of
// failing the request. Method: the shared PostgreSQL behind two hosts that cannot be reached,
// in one --db URL; the ledger opens (migrates) and decides through the third.
import { afterAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

describe.skipIf(!engines.includes('postgres'))('a host list with hosts that cannot be used', () => {
  let database: TestDatabase;
  let ledger: Ledger;
  afterAll(async () => {
    await ledger?.close();
    await database?.drop();
  });

  it('passes over an unknown name and a refusing port for the host that answers', async () => {
    database = await createTestDatabase('postgres');
    const url = new URL(database.url);
    const hosts = `no-such-host.invalid:5432,127.0.0.1:1,${url.host}`;
    ledger = await openLedger({ db: database.url.replace(`@${url.host}/`, `@${hosts}/`).replace('?', '?target_session_attrs=read-write&') });
    await ledger.putKind('gpus', { displayName: 'GPUs' });
    await ledger.putOrganization('acme', {});
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 3 }]);
    expect((await ledger.getQuotas('acme'))[0]).toMatchObject({ kind: 'gpus', quantity: 3 });
  });
});
