/**
 * Every organization the token may see, a page at a time, with a usage bar per kind. The id
 * filter and the paging run on the server, so a thousand organizations cost one page.
 */
import { useState } from 'preact/hooks';
import type { ResourceKind } from '../api.js';
import { Pager, usePaging } from '../components/Pager.js';
import { Empty, ErrorNotice, Loading } from '../components/Notice.js';
import { BarLegend, UsageBar } from '../components/UsageBar.js';
import { useDebounced, useLoad } from '../hooks.js';
import type { Session } from '../session.js';
import { TableScroll } from '../components/TableScroll.js';

const pageSize = 25;

export function Organizations({ session }: { session: Session }) {
  const [filter, setFilter] = useState('');
  const prefix = useDebounced(filter.trim().toLowerCase(), 250);
  const valid = prefix === '' || /^[a-z0-9-]{1,63}$/.test(prefix);
  const paging = usePaging();
  const kinds = useLoad(() => session.client.kinds(), [session]);
  const page = useLoad(
    () =>
      valid
        ? session.client.organizations({ prefix: prefix || undefined, cursor: paging.cursor, limit: pageSize })
        : Promise.resolve({ items: [], nextCursor: null }),
    [session, prefix, paging.cursor],
  );
  const kindList: ResourceKind[] = kinds.data?.items ?? [];
  return (
    <main id="content">
      <h1>Organizations</h1>
      <div class="toolbar">
        <label for="org-filter">Filter by id prefix</label>
        <input
          id="org-filter"
          type="search"
          value={filter}
          onInput={(event) => {
            // Back to the first page with the same keystroke, so no page of the new filter is
            // asked for with the old filter's cursor.
            paging.reset();
            setFilter(event.currentTarget.value);
          }}
          aria-invalid={!valid}
          aria-describedby="org-filter-help"
        />
        <span id="org-filter-help" class={valid ? 'muted' : 'warning-text'}>
          {valid ? 'Lowercase letters, digits and dashes.' : 'An id has only lowercase letters, digits and dashes.'}
        </span>
      </div>
      <BarLegend />
      <ErrorNotice error={kinds.error ?? page.error} />
      {page.data === undefined ? (
        page.loading ? <Loading what="organizations" /> : null
      ) : page.data.items.length === 0 ? (
        <Empty>No organization matches.</Empty>
      ) : (
        <TableScroll label="Organizations table">
          <table class="organizations">
            <caption class="visually-hidden">Organizations and their usage per kind</caption>
            <thead>
              <tr>
                <th scope="col">Organization</th>
                {kindList.map((kind) => (
                  <th scope="col" key={kind.name}>
                    {kind.displayName}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((organization) => (
                <tr key={organization.id}>
                  <th scope="row">
                    <a href={`#/o/${organization.id}`}>{organization.displayName}</a>
                    {organization.displayName !== organization.id ? <div class="muted">{organization.id}</div> : null}
                  </th>
                  {kindList.map((kind) => {
                    const quota = organization.quotas.find((q) => q.kind === kind.name);
                    return (
                      <td key={kind.name}>
                        {quota ? (
                          <UsageBar
                            label={`${organization.id} ${kind.displayName}`}
                            limit={quota.quantity}
                            committed={quota.committed}
                            reserved={quota.reserved}
                            held={quota.held}
                            format={quota.format}
                          />
                        ) : (
                          '—'
                        )}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      <Pager paging={paging} nextCursor={page.data?.nextCursor ?? null} label="Organizations" />
    </main>
  );
}
