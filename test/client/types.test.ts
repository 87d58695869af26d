// Goal: the client's types are the document's: a path it does not have, a body of the wrong
// shape, a missing path parameter and a misspelt error code do not compile, and answers and
// problems carry the document's types. These checks run in the type-check (`npm test` runs
// tsc over test/); at run time the file only builds a client.
// Method: vitest's expectTypeOf and @ts-expect-error on calls that are never awaited.
import { describe, expectTypeOf, it } from 'vitest';
import { AllotProblem, createClient, type ProblemDocument, type ReadData } from '../../src/client/index.js';
import type { ErrorCode } from '../../src/domain/errors.js';

describe('the client’s types', () => {
  it('follow the document', () => {
    const client = createClient({ baseUrl: 'http://127.0.0.1:9', token: 't', retries: 0 });
    const never = false as boolean;
    if (never) {
      // @ts-expect-error a path the document does not have
      void client.GET('/v1/nothing');
      // @ts-expect-error PUT is not a method of this path
      void client.PUT('/v1/whoami');
      // @ts-expect-error the path parameter is required
      void client.GET('/v1/organizations/{organization}', { params: { path: {} } });
      // @ts-expect-error a body of the wrong shape
      void client.PUT('/v1/organizations/{organization}/quotas', { params: { path: { organization: 'a' } }, body: { quota: 1 } });
      // @ts-expect-error update() only on paths read and written whole under an ETag
      void client.update('/v1/resource-kinds/{kind}', { path: { kind: 'k' } }, (current) => current);
      // @ts-expect-error a code the server does not have
      AllotProblem.is(new Error(), 'quota-exceedd');
    }
    type Quotas = ReadData<'/v1/organizations/{organization}/quotas'>;
    expectTypeOf<Quotas['quotas'][number]['used']>().toEqualTypeOf<number>();
    type Created = Awaited<ReturnType<typeof client.POST<'/v1/tokens', { body: { role: 'reader' } }>>>;
    expectTypeOf<Created['data']['token']>().toEqualTypeOf<string>();
    expectTypeOf<AllotProblem['violations']>().toEqualTypeOf<ProblemDocument['violations']>();
    expectTypeOf<ErrorCode>().toMatchTypeOf<AllotProblem['code']>();
  });
});
