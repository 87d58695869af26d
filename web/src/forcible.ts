/**
 * Saving a change the server may refuse as risky. Refusals that `force=true` overrides (a
 * quota or cap below usage, a guarantee the organization cannot meet) open a confirmation;
 * only an explicit confirm repeats the request with force. Every other refusal is shown.
 */
import { useState } from 'preact/hooks';
import { ApiError } from './api.js';

export const forcibleCodes = new Set(['quota-below-usage', 'guarantee-unavailable']);

export interface ForcibleSave {
  saving: boolean;
  error: unknown;
  /** The refusal awaiting confirmation, if any. */
  refusal: ApiError | null;
  /** The last save was refused because the value changed since it was read (412). */
  conflict: boolean;
  save(): Promise<void>;
  confirm(): Promise<void>;
  /** Closes the confirmation and forgets the last error. */
  cancel(): void;
}

/** `codes`: the refusals that ask to confirm; a quota request's safety check adds its own. */
export function useForcibleSave(
  write: (force: boolean) => Promise<void>,
  onSaved: () => void,
  codes: ReadonlySet<string> = forcibleCodes,
): ForcibleSave {
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [refusal, setRefusal] = useState<ApiError | null>(null);
  const attempt = async (force: boolean) => {
    setSaving(true);
    setError(null);
    try {
      await write(force);
      setRefusal(null);
      onSaved();
    } catch (caught) {
      if (!force && caught instanceof ApiError && codes.has(caught.code)) setRefusal(caught);
      else {
        setRefusal(null);
        setError(caught);
      }
    } finally {
      setSaving(false);
    }
  };
  return {
    saving,
    error,
    refusal,
    conflict: error instanceof ApiError && error.code === 'precondition-failed',
    save: () => attempt(false),
    confirm: () => attempt(true),
    cancel: () => {
      setRefusal(null);
      setError(null);
    },
  };
}
