/**
 * The signed-in token. Kept in sessionStorage: it survives a reload of this tab and is gone
 * when the tab closes; it is never sent anywhere but this server's API.
 */
import { Client, type WhoAmI } from './api.js';

export interface Session {
  client: Client;
  me: WhoAmI;
}

const key = 'allot.token';

export const storedToken = () => sessionStorage.getItem(key);

export async function signIn(token: string): Promise<Session> {
  const client = new Client(token.trim());
  const me = await client.whoami();
  sessionStorage.setItem(key, client.token);
  return { client, me };
}

export function signOut(): void {
  sessionStorage.removeItem(key);
}

/** What the token's role may change from the page (the API refuses the rest anyway). */
export const mayAdminister = (session: Session) => session.me.role === 'service-admin';
export const mayPartition = (session: Session) => session.me.role === 'service-admin' || session.me.role === 'org-admin';
export const mayReadOrganization = (session: Session) => session.me.role !== 'project-member';
