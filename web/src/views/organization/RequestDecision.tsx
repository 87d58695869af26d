/**
 * Approving or denying one pending request, inline under its row. An approval grants the
 * preferred value unless another is typed (less, usually); the server applies it through the
 * quota rules, and a grant they refuse (a guarantee the organization cannot meet, a cap below
 * usage) is shown as the server says it while the request stays pending. A denial says why.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type QuotaRequest } from '../../api.js';
import { ErrorNotice } from '../../components/Notice.js';
import { QuantityField } from '../../components/QuantityField.js';
import { parseQuantityField, type KindFormat } from '../../format.js';
import { oneParagraph, valueText } from '../../requests.js';
import type { Session } from '../../session.js';

export type Decision = 'approve' | 'deny';

/** The server's bound on a denial's reason. */
const reasonLengthMax = 2000;

export function DecisionEditor(props: {
  session: Session;
  organization: string;
  request: QuotaRequest;
  subject: string;
  format: KindFormat;
  decision: Decision;
  onClose: () => void;
  /** With the refusal when someone else decided it first. */
  onDecided: (refusal?: unknown) => void;
}) {
  const { request, session, organization } = props;
  const [text, setText] = useState('');
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const approve = props.decision === 'approve';
  const granted = parseQuantityField(text);
  // Nothing typed grants the preferred value.
  const grant = granted.ok && granted.value !== null ? { granted: granted.value } : {};
  const submit = async (event: Event) => {
    event.preventDefault();
    if (approve && !granted.ok) return;
    setSaving(true);
    setError(null);
    try {
      if (approve) await session.client.approveQuotaRequest(organization, request.id, grant);
      else await session.client.denyQuotaRequest(organization, request.id, oneParagraph(text));
      props.onDecided();
    } catch (caught) {
      // Decided by someone else meanwhile: the section says so, and this row leaves the list.
      if (caught instanceof ApiError && caught.code === 'quota-request-resolved') props.onDecided(caught);
      else setError(caught);
    } finally {
      setSaving(false);
    }
  };
  const id = `${props.decision}-${request.id}`;
  return (
    <>
      <form onSubmit={(event) => void submit(event)} aria-label={`${approve ? 'Approve' : 'Deny'} the request for the ${props.subject}`}>
        {approve ? (
          <QuantityField
            id={id}
            label="Granted value"
            value={text}
            onInput={setText}
            focus
            format={props.format}
            hint={`Empty: the preferred ${valueText(request.preferred, request.field, props.format)}.`}
          />
        ) : (
          <ReasonField id={id} value={text} onInput={setText} />
        )}
        <button type="submit" disabled={saving || (approve && !granted.ok)}>
          {approve ? 'Approve' : 'Deny'}
        </button>
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
      </form>
      <ErrorNotice error={error} />
    </>
  );
}

function ReasonField(props: { id: string; value: string; onInput: (value: string) => void }) {
  // The editor opened from the keyboard continues here.
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <span class="field field-wide">
      <label for={props.id}>Reason for the denial</label>
      <input
        ref={input}
        id={props.id}
        type="text"
        required
        pattern={'.*\\S.*'}
        title="Say why, in words."
        maxLength={reasonLengthMax}
        size={48}
        autocomplete="off"
        value={props.value}
        aria-describedby={`${props.id}-hint`}
        onInput={(event) => props.onInput(event.currentTarget.value)}
      />
      <span id={`${props.id}-hint`} class="muted hint">
        Shown to whoever asked.
      </span>
    </span>
  );
}
