/** API tokens: made, listed and revoked by service-admins. The token is shown once. */
import { Type } from '@sinclair/typebox';
import { principalOf } from '../auth.js';
import { endpoint, read } from '../route.js';
import { listOf, NewToken, problemResponses, Token, TokenBody, TokenParams, WhoAmI } from '../../schemas/index.js';

export const tokens = {
  whoami: read(
    {
      summary: "The caller's role and scope, as its token grants them",
      description:
        'The principal the journal records for the caller, its role, and the organization and project it is scoped to (null: all).',
      response: { 200: WhoAmI, ...problemResponses(401) },
    },
    async (request) => {
      const { id, role, organization, project } = request.principal;
      return { principal: id, role, organization, project };
    },
  ),

  create: endpoint({
    schema: {
      summary: 'Create an API token with one role and a scope',
      description:
        'The token itself is in `token`, shown this once and never stored (only its hash). Service-admins only.',
      params: Type.Object({}, { additionalProperties: false }),
      body: TokenBody,
      response: { 201: NewToken, ...problemResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply, { ledger }) => {
      const { token, record } = await ledger.createToken(request.body, { principal: principalOf(request) });
      return reply.code(201).send({ ...record, token });
    },
  }),

  list: read(
    {
      summary: 'List API tokens (never the tokens themselves)',
      description:
        'Every token with its role, scope, expiry, creator and revocation. Service-admins only.',
      response: { 200: listOf(Token), ...problemResponses(401, 403) },
    },
    async (_request, { ledger }) => ({ items: await ledger.listTokens() }),
  ),

  revoke: endpoint({
    schema: {
      summary: 'Revoke an API token',
      description:
        'It stops authenticating at once in this process and within seconds in others; open watch streams it opened end. 404 if unknown.',
      params: TokenParams,
      response: { 204: { type: 'null', description: 'Revoked' }, ...problemResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply, { ledger }) => {
      await ledger.revokeToken(request.params.id);
      return reply.code(204).send();
    },
  }),
};
