/**
 * Adds a webhook: a URL, and what to send there (journal entries, one kind's thresholds at
 * percentages of the organization's quota, a denial digest). The server checks the URL (a
 * private or loopback address is refused unless the operator allowed it) and its refusal is
 * shown as it says it. The signing secret comes in the answer only: it is shown here once.
 */
import { useState } from 'preact/hooks';
import type { NewSubscription, ResourceKind, SubscriptionInput } from '../../api.js';
import { ErrorNotice } from '../../components/Notice.js';
import type { Session } from '../../session.js';
import { parsePercentages } from '../../webhooks.js';

/** The server's bounds on the digest's interval, in minutes (60 s to a day). */
const digestMinutesMax = 1440;

interface Draft {
  url: string;
  journal: boolean;
  /** null: not chosen yet (the first kind); '': no thresholds. */
  kind: string | null;
  percentages: string;
  digestMinutes: string;
}

/** The digest's interval in minutes: '' is none. */
function parseMinutes(text: string): { ok: true; minutes: number | null } | { ok: false; message: string } {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: true, minutes: null };
  const minutes = /^[0-9]{1,4}$/.test(trimmed) ? Number(trimmed) : 0;
  return minutes >= 1 && minutes <= digestMinutesMax
    ? { ok: true, minutes }
    : { ok: false, message: `Whole minutes from 1 to ${digestMinutesMax}` };
}

const emptyDraft: Draft = { url: '', journal: false, kind: null, percentages: '80, 95, 100', digestMinutes: '' };

export function WebhookForm(props: { session: Session; organization: string; kinds: ResourceKind[]; onCreated: () => void }) {
  const [draft, setDraft] = useState<Draft>(emptyDraft);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<NewSubscription | null>(null);
  // The first kind until one is chosen: the kinds arrive after the form is drawn.
  const kind = draft.kind ?? props.kinds[0]?.name ?? '';
  const levels = parsePercentages(draft.percentages);
  const digest = parseMinutes(draft.digestMinutes);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!levels.ok || !digest.ok) return;
    const body: SubscriptionInput = {
      url: draft.url.trim(),
      journal: draft.journal ? {} : null,
      thresholds:
        kind === '' || levels.fractions.length === 0 ? [] : [{ kind, scope: 'organization', at: levels.fractions }],
      denials: digest.minutes === null ? null : { intervalSeconds: digest.minutes * 60 },
    };
    setSaving(true);
    setError(null);
    setCreated(null);
    try {
      setCreated((await props.session.client.createSubscription(props.organization, body)).body);
      setDraft((current) => ({ ...current, url: '' }));
      props.onCreated();
    } catch (caught) {
      setError(caught);
    } finally {
      setSaving(false);
    }
  };
  return (
    <>
      <h3 id="webhook-form-heading">Add a webhook</h3>
      <form class="toolbar" aria-labelledby="webhook-form-heading" onSubmit={(event) => void submit(event)}>
        <DraftFields draft={draft} kind={kind} kinds={props.kinds} onChange={setDraft} levels={levels} digest={digest} />
        <button type="submit" disabled={saving || !levels.ok || !digest.ok}>
          Add webhook
        </button>
      </form>
      <ErrorNotice error={error} />
      {created ? <SecretOnce subscription={created} onDone={() => setCreated(null)} /> : null}
    </>
  );
}

function DraftFields(props: {
  draft: Draft;
  kind: string;
  kinds: ResourceKind[];
  onChange: (draft: Draft) => void;
  levels: ReturnType<typeof parsePercentages>;
  digest: ReturnType<typeof parseMinutes>;
}) {
  const { draft, levels, digest } = props;
  const set = (change: Partial<Draft>) => props.onChange({ ...draft, ...change });
  return (
    <>
      <span class="field">
        <label for="webhook-url">URL</label>
        <input
          id="webhook-url"
          type="url"
          required
          size={40}
          placeholder="https://hooks.example.com/allot"
          value={draft.url}
          autocomplete="off"
          spellcheck={false}
          onInput={(event) => set({ url: event.currentTarget.value })}
        />
      </span>
      <span class="field field-check">
        <input
          id="webhook-journal"
          type="checkbox"
          checked={draft.journal}
          onChange={(event) => set({ journal: event.currentTarget.checked })}
        />
        <label for="webhook-journal">Journal entries</label>
      </span>
      <span class="field">
        <label for="webhook-kind">Thresholds of</label>
        <select id="webhook-kind" value={props.kind} onChange={(event) => set({ kind: event.currentTarget.value })}>
          <option value="">none</option>
          {props.kinds.map((kind) => (
            <option key={kind.name} value={kind.name}>
              {kind.displayName}
            </option>
          ))}
        </select>
      </span>
      <CheckedField
        id="webhook-levels"
        label="At percent of the quota"
        size={14}
        value={draft.percentages}
        onInput={(percentages) => set({ percentages })}
        hint="e.g. 80, 95, 100; empty: none"
        problem={levels.ok ? null : levels.message}
      />
      <CheckedField
        id="webhook-digest"
        label="Denial digest every (minutes)"
        size={6}
        numeric
        value={draft.digestMinutes}
        onInput={(digestMinutes) => set({ digestMinutes })}
        hint="Empty: no digest."
        problem={digest.ok ? null : digest.message}
      />
    </>
  );
}

/** A text input with its hint, or instead what is wrong with what was typed. */
function CheckedField(props: {
  id: string;
  label: string;
  size: number;
  numeric?: boolean;
  value: string;
  onInput: (value: string) => void;
  hint: string;
  problem: string | null;
}) {
  const hintId = `${props.id}-hint`;
  return (
    <span class="field">
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="text"
        inputMode={props.numeric ? 'numeric' : 'text'}
        size={props.size}
        value={props.value}
        autocomplete="off"
        aria-invalid={props.problem !== null}
        aria-describedby={hintId}
        onInput={(event) => props.onInput(event.currentTarget.value)}
      />
      <span id={hintId} class={props.problem === null ? 'muted hint' : 'warning-text hint'}>
        {props.problem ?? props.hint}
      </span>
    </span>
  );
}

/** The secret, this once: nothing shows it again, so the note says so and it stays until dismissed. */
function SecretOnce({ subscription, onDone }: { subscription: NewSubscription; onDone: () => void }) {
  return (
    <div class="notice notice-secret" role="status">
      <p>
        Added the webhook to <code>{subscription.url}</code>. Copy its signing secret now: it will not be shown again.
      </p>
      <p>
        Signing secret: <code class="secret">{subscription.secret}</code>
      </p>
      <button type="button" onClick={onDone}>
        I have copied it
      </button>
    </div>
  );
}
