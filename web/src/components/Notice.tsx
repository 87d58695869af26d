/** Errors and empty states, said the same way everywhere. */
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api.js';

export function ErrorNotice({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const message = error instanceof Error ? error.message : String(error);
  const fields = error instanceof ApiError ? error.fieldErrors : [];
  return (
    <div class="notice notice-error" role="alert">
      <p>{message}</p>
      {fields.length > 0 ? (
        <ul>
          {fields.map((field) => (
            <li key={field.field}>
              <code>{field.field}</code>: {field.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted">{children}</p>;
}
