/**
 * How the organization's projects divide its quotas: per project and kind the cap, the
 * guarantee and the usage. Those who may partition (service-admins, the organization's
 * admins) change caps and guarantees here, with the server's confirmations.
 */
import { useRef, useState } from 'preact/hooks';
import type { Answer, ProjectQuotaSet, ProjectQuotaUsage } from '../../api.js';
import { ForcibleEditor } from '../../components/ForcibleEditor.js';
import { Empty, ErrorNotice, Loading } from '../../components/Notice.js';
import { Pager, usePaging } from '../../components/Pager.js';
import { QuantityField } from '../../components/QuantityField.js';
import { UsageBar } from '../../components/UsageBar.js';
import { useForcibleSave } from '../../forcible.js';
import { exactly, formatQuantity, parseQuantityField } from '../../format.js';
import { useLoad } from '../../hooks.js';
import { mayPartition, type Session } from '../../session.js';
import { TableScroll } from '../../components/TableScroll.js';
import type { SectionProps } from './section.js';

const pageSize = 10;

/** With `project`, that project only (its token cannot list the others). */
export function ProjectsSection({ session, organization, version, project }: SectionProps) {
  const paging = usePaging();
  const projects = useLoad(async () => {
    const page =
      project === undefined
        ? await session.client.projects(organization, { cursor: paging.cursor, limit: pageSize })
        : { items: [{ id: project }], nextCursor: null };
    const quotas = await Promise.all(page.items.map((project) => session.client.projectQuotas(organization, project.id)));
    return { page, quotas };
  }, [session, organization, project, paging.cursor, version]);
  return (
    <section aria-labelledby="projects-heading">
      <h2 id="projects-heading">{project === undefined ? 'Projects' : `Project ${project}`}</h2>
      <ErrorNotice error={projects.error} />
      {projects.data === undefined ? (
        projects.loading ? <Loading what="projects" /> : null
      ) : projects.data.page.items.length === 0 ? (
        <Empty>No projects yet.</Empty>
      ) : (
        <TableScroll label="Projects table">
          <table class="projects">
            <thead>
              <tr>
                <th scope="col">Project</th>
                <th scope="col">Kind</th>
                <th scope="col">Usage against its cap</th>
                <th scope="col">Cap</th>
                <th scope="col">Guaranteed</th>
                <th scope="col">Available now</th>
                {mayPartition(session) ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}
              </tr>
            </thead>
            {projects.data.page.items.map((project, index) => (
              <ProjectRows
                key={project.id}
                session={session}
                organization={organization}
                project={project.id}
                quotas={projects.data!.quotas[index]!}
                onSaved={projects.reload}
              />
            ))}
          </table>
        </TableScroll>
      )}
      {project === undefined ? <Pager paging={paging} nextCursor={projects.data?.page.nextCursor ?? null} label="Projects" /> : null}
    </section>
  );
}

function ProjectRows(props: {
  session: Session;
  organization: string;
  project: string;
  quotas: Answer<ProjectQuotaSet>;
  onSaved: () => void;
}) {
  const [editing, setEditing] = useState<string | null>(null);
  const rows = props.quotas.body.quotas;
  const buttons = useRef(new Map<string, HTMLButtonElement>());
  // Closing the editor gives the focus back to the button that opened it.
  const close = (kind: string) => {
    setEditing(null);
    setTimeout(() => buttons.current.get(kind)?.focus(), 0);
  };
  const partition = mayPartition(props.session);
  return (
    <tbody>
      {rows.map((row, index) => {
        const fmt = (value: number | null) => formatQuantity(value, row.format);
        return [
          <tr key={row.kind}>
            {index === 0 ? (
              <th scope="rowgroup" rowSpan={rows.length + (editing === null ? 0 : 1)}>
                {props.project}
              </th>
            ) : null}
            <td>{row.displayName}</td>
            <td class="bar-cell">
              <UsageBar
                label={`${props.project} ${row.displayName}`}
                limit={row.cap}
                committed={row.committed}
                reserved={row.reserved}
                held={row.held}
                format={row.format}
              />
            </td>
            <td title={exactly(row.cap)}>{row.cap === null ? 'no cap' : fmt(row.cap)}</td>
            <td title={exactly(row.guaranteed)}>{fmt(row.guaranteed)}</td>
            <td title={exactly(row.available)}>{fmt(row.available)}</td>
            {partition ? (
              <td>
                <button
                  ref={(element) => {
                    if (element) buttons.current.set(row.kind, element);
                  }}
                  type="button"
                  onClick={() => setEditing(row.kind)}
                  aria-label={`Change the ${row.displayName} cap and guarantee of ${props.project}`}
                  disabled={editing !== null}
                >
                  Change
                </button>
              </td>
            ) : null}
          </tr>,
          editing === row.kind ? (
            <tr key={`${row.kind}-editor`} class="editor">
              <td colSpan={6}>
                <ProjectQuotaEditor {...props} row={row} onClose={() => close(row.kind)} />
              </td>
            </tr>
          ) : null,
        ];
      })}
    </tbody>
  );
}

function ProjectQuotaEditor(props: {
  session: Session;
  organization: string;
  project: string;
  quotas: Answer<ProjectQuotaSet>;
  row: ProjectQuotaUsage;
  onClose: () => void;
  onSaved: () => void;
}) {
  const { row } = props;
  const fmt = (value: number | null) => formatQuantity(value, row.format);
  // The ETag as the editor opened: a change made meanwhile is refused (412), not overwritten.
  const [etag, setEtag] = useState(props.quotas.etag);
  const [capText, setCapText] = useState(row.cap === null ? '' : String(row.cap));
  const [guaranteeText, setGuaranteeText] = useState(row.guaranteed === 0 ? '' : String(row.guaranteed));
  const cap = parseQuantityField(capText);
  const guaranteed = parseQuantityField(guaranteeText);
  const saving = useForcibleSave(
    async (force) => {
      if (!cap.ok || !guaranteed.ok) return;
      await props.session.client.setProjectQuota(
        props.organization,
        props.project,
        { kind: row.kind, cap: cap.value, guaranteed: guaranteed.value },
        etag,
        force,
      );
    },
    () => {
      props.onClose();
      props.onSaved();
    },
  );
  // On a conflict, read the values now: the page's own copy may be as old as the draft.
  const current = useLoad(
    async () => (saving.conflict ? props.session.client.projectQuotas(props.organization, props.project) : null),
    [saving.conflict],
  );
  const now = current.data?.body.quotas.find((candidate) => candidate.kind === row.kind);
  const id = `project-quota-${props.project}-${row.kind}`;
  return (
    <ForcibleEditor
      saving={saving}
      canSave={cap.ok && guaranteed.ok}
      onClose={props.onClose}
      conflictMessage={`${props.project}'s caps and guarantees changed since you opened this editor; nothing was saved.`}
      conflict={
        saving.conflict
          ? {
              now: now ? `Its ${row.displayName} cap is now ${now.cap === null ? 'none' : fmt(now.cap)}, its guarantee ${fmt(now.guaranteed)}.` : null,
              restartLabel: 'Start again from the current values',
              restart: () => {
                if (!now || !current.data) return;
                setEtag(current.data.etag);
                setCapText(now.cap === null ? '' : String(now.cap));
                setGuaranteeText(now.guaranteed === 0 ? '' : String(now.guaranteed));
              },
            }
          : null
      }
      confirm={{
        title: saving.refusal?.code === 'guarantee-unavailable' ? 'Guarantee more than is free?' : `Cap ${props.project} below its usage?`,
        label: 'Force the change',
        consequence: 'Nothing already allocated is taken away; new allocations are refused until the numbers fit again.',
      }}
    >
      <QuantityField
        id={`${id}-cap`}
        label={`${row.displayName} cap of ${props.project}`}
        value={capText}
        onInput={setCapText}
        hint="Empty: no cap."
        format={row.format}
        focus
      />
      <QuantityField
        id={`${id}-guaranteed`}
        label={`${row.displayName} guarantee of ${props.project}`}
        value={guaranteeText}
        onInput={setGuaranteeText}
        hint="Empty: none."
        format={row.format}
      />
    </ForcibleEditor>
  );
}
