/** Resource kinds, organizations and projects: the ledger's catalog. */
import { build } from '../engine/build.js';
import { invalid } from '../../domain/errors.js';
import { listKinds, requireKind, upsertKind } from '../catalog/kinds.js';
import { pageSize } from '../pages.js';
import {
  listOrganizations,
  listProjects,
  requireOrganization,
  requireProject,
  upsertOrganization,
  upsertProject,
} from '../catalog/tenants.js';
import type { Organization, Page, PageRequest, Project, ResourceKind, ResourceKindInput, WriteOptions } from '../types.js';
import { checkDescription, checkDisplayName, checkId, checkQuantity } from '../validate.js';
import type { Core } from '../core.js';

export const catalogOf = (core: Core) => ({
    putKind(name: string, input: ResourceKindInput) {
      const kind = {
        name: checkId('kind', name),
        displayName: checkDisplayName(input.displayName),
        description: checkDescription(input.description ?? ''),
        default:
          input.default === undefined || input.default === null
            ? null
            : checkQuantity('default', input.default),
        format: input.format ?? 'decimal',
      };
      if (kind.format !== 'decimal' && kind.format !== 'binary') {
        throw invalid('format', 'must be "decimal" or "binary"');
      }
      return core.write({}, ({ tx, dialect, nowMs }) => upsertKind(tx, dialect, kind, nowMs));
    },

    getKind(name: string): Promise<ResourceKind> {
      return core.read((tx) => requireKind(tx, name));
    },

    listKinds(): Promise<ResourceKind[]> {
      return core.read((tx) => listKinds(tx));
    },


    putOrganization(id: string, input: { displayName?: string }) {
      checkId('organization', id);
      const displayName = checkDisplayName(input.displayName ?? id);
      // Named, so this process's reads of it (and of the listing) stay fresh (Core.lagging).
      return core.write({}, ({ tx, nowMs }) => upsertOrganization(tx, id, displayName, nowMs), id);
    },

    getOrganization(id: string): Promise<Organization> {
      return core.read((tx) => requireOrganization(tx, id));
    },

    /** A page of organizations, by id; `prefix` keeps those whose id starts with it. */
    listOrganizations(page: PageRequest & { prefix?: string } = {}): Promise<Page<Organization>> {
      const limit = pageSize(page);
      return core.lagging(undefined, (tx) => listOrganizations(tx, limit, page.cursor, page.prefix));
    },

    putProject(organization: string, id: string, input: { displayName?: string }) {
      checkId('project', id);
      const displayName = checkDisplayName(input.displayName ?? id);
      return core.write({}, ({ tx, nowMs }) => upsertProject(tx, organization, id, displayName, nowMs), organization);
    },

    getProject(organization: string, id: string): Promise<Project> {
      return core.read((tx) => requireProject(tx, organization, id));
    },

    listProjects(organization: string, page: PageRequest = {}): Promise<Page<Project>> {
      const limit = pageSize(page);
      return core.lagging(organization, (tx) => listProjects(tx, organization, limit, page.cursor));
    },

    /**
     * Deletes a project: refused (project-not-empty) while it has live allocations or pending
     * holds, unless `cascade`, which deletes and releases them (journaled). Its caps and
     * guarantees go with it and its project-member tokens are revoked.
     */
    deleteProject(
      organization: string,
      id: string,
      options: WriteOptions & { cascade?: boolean } = {},
    ): Promise<{ allocations: number; holds: number }> {
      return core.one(build.deleteProject(organization, id, options.cascade ?? false), options);
    },
});
