/** Allocations: a project's quota, tied to the referenced resource that uses it. */
import { build } from '../engine/build.js';
import type { AllocationMetadata } from '../engine/operations.js';
import { notFound } from '../../domain/errors.js';
import { listAllocations, listOrganizationAllocations, readAllocation } from '../allocations/reads.js';
import { pageSize } from '../pages.js';
import { requireProject } from '../catalog/tenants.js';
import type { Allocation, AllocationFilter, AllocationInput, Page, WriteOptions } from '../types.js';
import { checkAllocationFilter } from './validate.js';
import type { Core } from '../core.js';

export const allocationsOf = (core: Core) => ({
    async createAllocation(
      organization: string,
      project: string,
      input: AllocationInput,
      options: WriteOptions & { metadata?: AllocationMetadata } = {},
    ): Promise<Allocation> {
      return core.one(build.createAllocation(organization, project, input, options.metadata), options);
    },

    async replaceAllocation(
      organization: string,
      project: string,
      id: string,
      input: AllocationInput,
      options: WriteOptions & { metadata?: AllocationMetadata } = {},
    ): Promise<Allocation> {
      return core.one(build.replaceAllocation(organization, project, id, input, options.ifGeneration, options.metadata), options);
    },

    /** Returns `{ deleted: false }` for an allocation that was already deleted. */
    async deleteAllocation(
      organization: string,
      project: string,
      id: string,
      options: WriteOptions = {},
    ): Promise<{ deleted: boolean }> {
      return core.one(build.deleteAllocation(organization, project, id, options.ifGeneration), options);
    },

    /** An organization's live allocations across its projects, filtered like a project's. */
    listOrganizationAllocations(organization: string, filter: AllocationFilter = {}): Promise<Page<Allocation>> {
      const limit = pageSize(filter);
      checkAllocationFilter(filter);
      return core.lagging(organization, (tx) => listOrganizationAllocations(tx, organization, filter, limit));
    },

    getAllocation(organization: string, project: string, id: string): Promise<Allocation> {
      return core.read(async (tx) => {
        await requireProject(tx, organization, project);
        const allocation = await readAllocation(tx, organization, project, id);
        if (!allocation) throw notFound(`allocation "${id}"`);
        return allocation;
      });
    },

    listAllocations(
      organization: string,
      project: string,
      filter: AllocationFilter = {},
    ): Promise<Page<Allocation>> {
      const limit = pageSize(filter);
      checkAllocationFilter(filter);
      return core.lagging(organization, (tx) => listAllocations(tx, organization, project, filter, limit));
    },

  /** What the identity-compatibility API keeps with an allocation (undefined: nothing). */
  getAllocationMetadata(organization: string, id: string): Promise<AllocationMetadata | undefined> {
    return core.read((tx) =>
      tx.get<AllocationMetadata>(
        'SELECT name, description, tags FROM compat_allocation_metadata WHERE organization_id = ? AND allocation_id = ?',
        [organization, id],
      ),
    );
  },
});
