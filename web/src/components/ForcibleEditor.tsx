/**
 * The frame every inline editor shares: its fields, Save and Cancel; the server's refusal
 * (or, on a 412, what the value is now and a way to start again from it); and the
 * confirmation a forcible refusal opens.
 */
import type { ComponentChildren } from 'preact';
import type { ForcibleSave } from '../forcible.js';
import { ConfirmDialog } from './ConfirmDialog.js';
import { ErrorNotice } from './Notice.js';

export interface Conflict {
  /** What was refused and what holds now; null while the current value is being read. */
  now: string | null;
  restartLabel: string;
  /** Starts the draft over from the current value and its ETag. */
  restart: () => void;
}

export function ForcibleEditor(props: {
  saving: ForcibleSave;
  canSave: boolean;
  onClose: () => void;
  /** What changed under the editor, when the save was refused with 412. */
  conflict: Conflict | null;
  conflictMessage: string;
  confirm: { title: string; label: string; consequence: string };
  children: ComponentChildren;
}) {
  const { saving, conflict } = props;
  return (
    <>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (props.canSave) void saving.save();
        }}
      >
        {props.children}
        <button type="submit" disabled={!props.canSave || saving.saving}>
          Save
        </button>
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
      </form>
      {conflict ? (
        <div class="notice notice-error" role="alert">
          <p>
            {props.conflictMessage} {conflict.now ?? 'Reading the current values…'}
          </p>
          <button
            type="button"
            disabled={conflict.now === null}
            onClick={() => {
              conflict.restart();
              saving.cancel();
            }}
          >
            {conflict.restartLabel}
          </button>
        </div>
      ) : (
        <ErrorNotice error={saving.error} />
      )}
      <ConfirmDialog
        open={saving.refusal !== null}
        title={props.confirm.title}
        confirmLabel={props.confirm.label}
        onConfirm={() => void saving.confirm()}
        onCancel={saving.cancel}
      >
        <p>{saving.refusal?.message}</p>
        <p>{props.confirm.consequence}</p>
      </ConfirmDialog>
    </>
  );
}
