import { Type } from '@sinclair/typebox';
import { kindsPerRequestMax } from '../domain/constants.js';
import { Cursor, Id, Quantity, QuantityInput, strict } from './common.js';

// Limits

export const LimitParams = Type.Object({ organization: Id, project: Id, service: Id, resourceType: Id }, strict);
export const LimitRegionParams = Type.Object(
  { organization: Id, project: Id, service: Id, resourceType: Id, region: Id },
  strict,
);

export const LimitBody = Type.Object(
  {
    regions: Type.Array(Type.Object({ region: Id, limit: Type.Optional(QuantityInput) }, strict), {
      minItems: 1,
      maxItems: kindsPerRequestMax,
      description:
        'The configured limit per region (regions not listed lose their limit); with `global`, the regions only, without limits',
    }),
    global: Type.Optional(
      Type.Union([QuantityInput, Type.Null()], {
        description:
          'A bound across the listed regions: the controller gives each region a share, never adding up to more (escrow)',
      }),
    ),
  },
  strict,
);

export const LimitUsageBody = Type.Object({ usage: Quantity }, strict);

export const ProjectLimitRegion = Type.Object({
  region: Type.String(),
  hostStatus: Type.Union([Type.Literal('ok'), Type.Literal('stale'), Type.Literal('unknown'), Type.Literal('none'), Type.Literal('disabled')], {
    description:
      "How the region's own controller last fared syncing usage from the region's host of this service: ok within 30 s; " +
      'stale: failing, or not for 30 s (the usage may be old, even if other regions reach the host); unknown: not yet; none: no host registered; ' +
      "disabled: the project's enabled regions leave this one out, so no tracker enforces the limit here (it comes back when the region does)",
  }),
  configuredLimit: Type.Union([Quantity], {
    description: "What the region's host enforces (with a global bound, the region's share of it)",
  }),
  activeLimit: Type.Union([Quantity], {
    description: 'max(configuredLimit, usage): usage above the configured limit shows here as a gap, but never raises what the host enforces',
  }),
  usage: Quantity,
  gap: Type.Union([Quantity], { description: 'activeLimit - configuredLimit' }),
  usageReportedAt: Type.Union([Type.String(), Type.Null()]),
  generation: Type.Integer(),
  updatedBy: Type.String(),
  updatedAt: Type.String(),
});

export const ProjectLimit = Type.Object({
  organization: Type.String(),
  project: Type.String(),
  service: Type.String(),
  resourceType: Type.String(),
  global: Type.Union([Quantity, Type.Null()], { description: 'The bound across regions (null: none)' }),
  regions: Type.Array(ProjectLimitRegion),
});

export const OrganizationLimitQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1 to 100 projects' })),
    cursor: Type.Optional(Cursor),
    project: Type.Optional(Id),
  },
  strict,
);
