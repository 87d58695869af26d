/**
 * The request form's fields: the kind, what to change (the organization's quota, or a
 * project's cap or guarantee: a project-member's own project only), the project, the preferred
 * value, why, and whom to ask. The value in force is read for what is chosen, and said.
 */
import { useEffect, useRef } from 'preact/hooks';
import type { ResourceKind } from '../../api.js';
import { QuantityField } from '../../components/QuantityField.js';
import type { KindFormat } from '../../format.js';
import { useLoad } from '../../hooks.js';
import { oneParagraph, type RequestTarget } from '../../requests.js';
import type { Session } from '../../session.js';

/** The server's bounds on the free text. */
const justificationLengthMax = 2000;
const contactLengthMax = 200;
/** Projects offered in a list; an organization with more has its project typed. */
const projectsListedMax = 100;
export const idPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;
const none: readonly { id: string }[] = [];

export interface Draft {
  /** null: not chosen yet (the first kind, the first target). */
  kind: string | null;
  target: RequestTarget | null;
  project: string;
  preferred: string;
  justification: string;
  contact: string;
}

export const emptyDraft: Draft = { kind: null, target: null, project: '', preferred: '', justification: '', contact: '' };

const targetLabels: Record<RequestTarget, string> = {
  quota: "the organization's quota",
  cap: "a project's cap",
  guaranteed: "a project's guarantee",
};

/** What the form has resolved from the draft: the defaults filled in. */
export interface Chosen {
  kind: string;
  displayName: string;
  format: KindFormat;
  target: RequestTarget;
  /** '' for the organization's quota. */
  project: string;
}

/** The first kind and target until others are chosen (the kinds arrive after the form is drawn); a member's own project. */
export function chosenOf(draft: Draft, kinds: readonly ResourceKind[], targets: readonly RequestTarget[], own: string | null): Chosen {
  const kind = kinds.find((candidate) => candidate.name === draft.kind) ?? kinds[0];
  const target = draft.target ?? targets[0]!;
  return {
    kind: kind?.name ?? '',
    displayName: kind?.displayName ?? '',
    format: kind?.format ?? 'decimal',
    target,
    project: target === 'quota' ? '' : (own ?? draft.project),
  };
}

export function DraftFields(props: {
  session: Session;
  organization: string;
  draft: Draft;
  chosen: Chosen;
  targets: RequestTarget[];
  kinds: ResourceKind[];
  /** Merged into the draft as it is then (the project list fills its field after a render). */
  onChange: (change: Partial<Draft>) => void;
}) {
  const { draft, chosen, session } = props;
  const set = props.onChange;
  const own = session.me.project;
  const label = (target: RequestTarget) => (own === null ? targetLabels[target] : `${own}'s ${target === 'cap' ? 'cap' : 'guarantee'}`);
  return (
    <>
      <span class="field">
        <label for="request-kind">Kind</label>
        <select id="request-kind" value={chosen.kind} onChange={(event) => set({ kind: event.currentTarget.value })}>
          {props.kinds.map((kind) => (
            <option key={kind.name} value={kind.name}>
              {kind.displayName}
            </option>
          ))}
        </select>
      </span>
      <span class="field">
        <label for="request-target">Change</label>
        <select id="request-target" value={chosen.target} onChange={(event) => set({ target: event.currentTarget.value as RequestTarget })}>
          {props.targets.map((target) => (
            <option key={target} value={target}>
              {label(target)}
            </option>
          ))}
        </select>
      </span>
      {own === null && chosen.target !== 'quota' ? (
        <ProjectField session={session} organization={props.organization} value={draft.project} onInput={(project) => set({ project })} />
      ) : null}
      <QuantityField
        id="request-preferred"
        label="Preferred value"
        value={draft.preferred}
        onInput={(preferred) => set({ preferred })}
        format={chosen.format}
        hint={chosen.format === 'binary' ? 'e.g. 512Gi' : 'e.g. 100'}
        required
      />
      <TextField
        id="request-justification"
        label="Justification"
        hint="Why: shown to whoever decides; one paragraph."
        multiline
        value={draft.justification}
        onInput={(justification) => set({ justification })}
        lengthMax={justificationLengthMax}
      />
      <TextField
        id="request-contact"
        label="Contact"
        hint="Whom to ask about it."
        value={draft.contact}
        onInput={(contact) => set({ contact })}
        lengthMax={contactLengthMax}
      />
    </>
  );
}

/** A list of the organization's projects, or, for one with very many, the project typed. */
function ProjectField(props: { session: Session; organization: string; value: string; onInput: (project: string) => void }) {
  const projects = useLoad(
    () => props.session.client.projects(props.organization, { limit: projectsListedMax }),
    [props.session, props.organization],
  );
  // A list while it loads too: a field that changed its kind under the cursor would drop the focus.
  const many = projects.data ? projects.data.nextCursor !== null : projects.error !== null;
  const listed = many ? null : (projects.data?.items ?? none);
  // The first project until one is chosen: the list arrives after the form is drawn.
  useEffect(() => {
    if (listed && props.value === '' && listed[0]) props.onInput(listed[0].id);
  }, [listed]);
  return (
    <span class="field">
      <label for="request-project">For project</label>
      {listed ? (
        <select id="request-project" value={props.value} required onChange={(event) => props.onInput(event.currentTarget.value)}>
          {listed.map((project) => (
            <option key={project.id} value={project.id}>
              {project.id}
            </option>
          ))}
        </select>
      ) : (
        <input
          id="request-project"
          type="text"
          required
          pattern={idPattern.source.slice(1, -1)}
          title="A project id: lowercase letters, digits and dashes"
          size={16}
          autocomplete="off"
          spellcheck={false}
          value={props.value}
          onInput={(event) => props.onInput(event.currentTarget.value)}
        />
      )}
    </span>
  );
}

/**
 * Required free text, one paragraph: the API takes no control characters, so line breaks are
 * sent as spaces, and blank text is refused here as empty.
 */
function TextField(props: {
  id: string;
  label: string;
  hint: string;
  value: string;
  onInput: (value: string) => void;
  lengthMax: number;
  multiline?: boolean;
}) {
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  useEffect(() => {
    ref.current?.setCustomValidity(props.value !== '' && oneParagraph(props.value) === '' ? 'Say it in words.' : '');
  }, [props.value]);
  const common = {
    ref,
    id: props.id,
    required: true,
    maxLength: props.lengthMax,
    value: props.value,
    'aria-describedby': `${props.id}-hint`,
    onInput: (event: { currentTarget: { value: string } }) => props.onInput(event.currentTarget.value),
  };
  return (
    <span class={`field${props.multiline ? ' field-wide' : ''}`}>
      <label for={props.id}>{props.label}</label>
      {props.multiline ? <textarea {...common} rows={2} cols={40} /> : <input {...common} type="text" size={24} autocomplete="off" />}
      <span id={`${props.id}-hint`} class="muted hint">
        {props.hint}
      </span>
    </span>
  );
}
