/**
 * The organization's live allocations, searched on the server by project and by the
 * resource they belong to, a page at a time.
 */
import { useState } from 'preact/hooks';
import { Empty, ErrorNotice, Loading } from '../../components/Notice.js';
import { Pager, usePaging } from '../../components/Pager.js';
import { formatQuantity as formatQuantityOf, formatTime } from '../../format.js';
import { useLoad } from '../../hooks.js';
import { TableScroll } from '../../components/TableScroll.js';
import type { SectionProps } from './section.js';

const pageSize = 25;
const idPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

interface Search {
  project: string;
  resourceKind: string;
  resourceId: string;
}

/** With `project`, that project's allocations only (its token cannot list the others'). */
export function AllocationsSection({ session, organization, version, project }: SectionProps) {
  const [form, setForm] = useState<Search>({ project: '', resourceKind: '', resourceId: '' });
  const [search, setSearch] = useState<Search>(form);
  const [formError, setFormError] = useState<string | null>(null);
  const paging = usePaging();
  const kinds = useLoad(() => session.client.kinds(), [session]);
  const formatOf = (kind: string) => kinds.data?.items.find((k) => k.name === kind)?.format ?? 'decimal';
  const page = useLoad(() => {
    const query = {
      resourceKind: search.resourceKind || undefined,
      resourceId: search.resourceId || undefined,
      cursor: paging.cursor,
      limit: pageSize,
    };
    return project === undefined
      ? session.client.allocations(organization, { ...query, project: search.project || undefined })
      : session.client.projectAllocations(organization, project, query);
  }, [session, organization, project, search, paging.cursor, version]);
  const submit = (event: Event) => {
    event.preventDefault();
    const trimmed = { project: form.project.trim(), resourceKind: form.resourceKind.trim(), resourceId: form.resourceId.trim() };
    for (const field of ['project', 'resourceKind'] as const) {
      if (trimmed[field] !== '' && !idPattern.test(trimmed[field])) {
        setFormError(`${field === 'project' ? 'A project' : 'A resource kind'} id has only lowercase letters, digits and dashes.`);
        return;
      }
    }
    setFormError(null);
    paging.reset();
    setSearch(trimmed);
  };
  const field = (name: keyof Search, label: string) => (
    <span class="field">
      <label for={`allocation-${name}`}>{label}</label>
      <input
        id={`allocation-${name}`}
        type="search"
        value={form[name]}
        onInput={(event) => setForm({ ...form, [name]: event.currentTarget.value })}
        autocomplete="off"
        spellcheck={false}
      />
    </span>
  );
  return (
    <section aria-labelledby="allocations-heading" class="allocations">
      <h2 id="allocations-heading">Allocations</h2>
      <form class="toolbar" onSubmit={submit} role="search" aria-label="Search allocations">
        {project === undefined ? field('project', 'Project') : null}
        {field('resourceKind', 'Resource kind')}
        {field('resourceId', 'Resource id')}
        <button type="submit">Search</button>
      </form>
      {formError ? <ErrorNotice error={new Error(formError)} /> : null}
      <ErrorNotice error={page.error} />
      {page.data === undefined ? (
        page.loading ? <Loading what="allocations" /> : null
      ) : page.data.items.length === 0 ? (
        <Empty>No live allocation matches.</Empty>
      ) : (
        <TableScroll label="Allocations table">
          <table>
            <thead>
              <tr>
                <th scope="col">Project</th>
                <th scope="col">Resource</th>
                <th scope="col">Amounts</th>
                <th scope="col">Created</th>
                <th scope="col">By</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((allocation) => (
                <tr key={allocation.id}>
                  <td>{allocation.project}</td>
                  <td>
                    <code>
                      {allocation.resource.kind}/{allocation.resource.id}
                    </code>
                  </td>
                  <td>
                    <ul class="plain">
                      {allocation.allocations.map((line) => (
                        <li key={line.kind}>
                          {line.kind}: {formatQuantityOf(line.committed, formatOf(line.kind))} committed
                          {line.reserved > 0 ? `, ${formatQuantityOf(line.reserved, formatOf(line.kind))} reserved` : ''}
                        </li>
                      ))}
                    </ul>
                  </td>
                  <td>{formatTime(allocation.createdAt)}</td>
                  <td>{allocation.createdBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      <Pager paging={paging} nextCursor={page.data?.nextCursor ?? null} label="Allocations" />
    </section>
  );
}

