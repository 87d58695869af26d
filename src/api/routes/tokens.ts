/** API tokens: made, listed and revoked by service-admins. The token is shown once. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { roles } from '../../domain/access.js';
import type { Ledger } from '../../ledger/ledger.js';
import { principalOf } from '../auth.js';
import { Id, listOf, problemResponses } from '../schemas.js';

const Role = Type.Union(roles.map((role) => Type.Literal(role)));

const TokenBody = Type.Object(
  {
    role: Role,
    organization: Type.Optional(Type.Union([Id, Type.Null()])),
    project: Type.Optional(Type.Union([Id, Type.Null()])),
    expiresAt: Type.Optional(Type.Union([Type.String({ format: 'date-time', maxLength: 64 }), Type.Null()])),
  },
  { additionalProperties: false },
);

const tokenFields = {
  id: Type.String(),
  role: Role,
  organization: Type.Union([Type.String(), Type.Null()]),
  project: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.String(),
  createdAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
};

const Token = Type.Object(tokenFields);
const NewToken = Type.Object({
  ...tokenFields,
  token: Type.String({ description: 'The token itself: shown this once, never stored' }),
});

const WhoAmI = Type.Object({
  principal: Type.String({ description: 'What the journal records for this caller' }),
  role: Role,
  organization: Type.Union([Type.String(), Type.Null()]),
  project: Type.Union([Type.String(), Type.Null()]),
});

export const tokenRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger }> = async (app, { ledger }) => {
  app.get('/v1/whoami', {
    config: { action: 'read' },
    schema: {
      tags: ['tokens'],
      summary: "The caller's role and scope, as its token grants them",
      response: { 200: WhoAmI, ...problemResponses(401) },
    },
    handler: async (request) => {
      const { id, role, organization, project } = request.principal;
      return { principal: id, role, organization, project };
    },
  });

  app.post('/v1/tokens', {
    config: { action: 'administer' },
    schema: {
      tags: ['tokens'],
      summary: 'Create an API token with one role and a scope',
      params: Type.Object({}, { additionalProperties: false }),
      body: TokenBody,
      response: { 201: NewToken, ...problemResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const { token, record } = await ledger.createToken(request.body, { principal: principalOf(request) });
      return reply.code(201).send({ ...record, token });
    },
  });

  app.get('/v1/tokens', {
    config: { action: 'administer' },
    schema: {
      tags: ['tokens'],
      summary: 'List API tokens (never the tokens themselves)',
      response: { 200: listOf(Token), ...problemResponses(401, 403) },
    },
    handler: async () => ({ items: await ledger.listTokens() }),
  });

  app.delete('/v1/tokens/:id', {
    config: { action: 'administer' },
    schema: {
      tags: ['tokens'],
      summary: 'Revoke an API token',
      params: Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }, { additionalProperties: false }),
      response: { 204: { type: 'null', description: 'Revoked' }, ...problemResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      await ledger.revokeToken(request.params.id);
      return reply.code(204).send();
    },
  });
};
