/**
 * The operations of decisions, built from what callers pass: checked (a refusal of the input
 * throws at once, before anything is queued) and given their new ids. The ledger's methods and
 * the API's routes and batches build their operations here, so both check alike.
 */
import { v7 as uuidv7 } from 'uuid';
import type {
  AllocationInput,
  ConfirmInput,
  HoldInput,
  ProjectQuotaInput,
  QuotaInput,
} from '../types.js';
import { checkAllocationInput } from '../allocations/validate.js';
import { checkConfirmInput, checkHoldInput } from '../holds/validate.js';
import { checkProjectQuotaInputs, checkQuotaInputs } from '../quotas/validate.js';
import type { AllocationMetadata, Operation } from './operations.js';

type Of<N extends Operation['op']> = Extract<Operation, { op: N }>;

export const build = {
  createAllocation: (organization: string, project: string, input: AllocationInput, metadata?: AllocationMetadata): Of<'allocation.create'> => ({
    op: 'allocation.create',
    organization,
    project,
    id: uuidv7(),
    input: checkAllocationInput(input),
    ...(metadata ? { metadata } : {}),
  }),
  replaceAllocation: (
    organization: string,
    project: string,
    id: string,
    input: AllocationInput,
    ifGeneration?: number,
    metadata?: AllocationMetadata,
  ): Of<'allocation.replace'> => ({
    op: 'allocation.replace',
    organization,
    project,
    id,
    input: checkAllocationInput(input),
    ...(ifGeneration === undefined ? {} : { ifGeneration }),
    ...(metadata ? { metadata } : {}),
  }),
  deleteAllocation: (organization: string, project: string, id: string, ifGeneration?: number): Of<'allocation.delete'> => ({
    op: 'allocation.delete',
    organization,
    project,
    id,
    ...(ifGeneration === undefined ? {} : { ifGeneration }),
  }),
  createHold: (organization: string, project: string, input: HoldInput): Of<'hold.create'> => ({
    op: 'hold.create',
    organization,
    project,
    id: uuidv7(),
    input: checkHoldInput(input),
  }),
  confirmHold: (organization: string, project: string, id: string, input: ConfirmInput = {}, ifGeneration?: number): Of<'hold.confirm'> => {
    const lines = checkConfirmInput(input);
    return {
      op: 'hold.confirm',
      organization,
      project,
      id,
      ...(lines ? { lines } : {}),
      ...(ifGeneration === undefined ? {} : { ifGeneration }),
    };
  },
  releaseHold: (organization: string, project: string, id: string, ifGeneration?: number): Of<'hold.release'> => ({
    op: 'hold.release',
    organization,
    project,
    id,
    ...(ifGeneration === undefined ? {} : { ifGeneration }),
  }),
  setQuotas: (organization: string, inputs: readonly QuotaInput[], force = false, ifGeneration?: number): Of<'quota.set'> => ({
    op: 'quota.set',
    organization,
    inputs: checkQuotaInputs(inputs),
    force,
    ...(ifGeneration === undefined ? {} : { ifGeneration }),
  }),
  setProjectQuotas: (
    organization: string,
    project: string,
    inputs: readonly ProjectQuotaInput[],
    force = false,
    ifGeneration?: number,
  ): Of<'project-quota.set'> => ({
    op: 'project-quota.set',
    organization,
    project,
    inputs: checkProjectQuotaInputs(inputs),
    force,
    ...(ifGeneration === undefined ? {} : { ifGeneration }),
  }),
  deleteProject: (organization: string, project: string, cascade = false): Of<'project.delete'> => ({
    op: 'project.delete',
    organization,
    project,
    cascade,
  }),
};
