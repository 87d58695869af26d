/**
 * A host written with better-sqlite3: its own handle and `db.transaction`. The triggers check
 * each row as it is written, so the refusal is thrown by the INSERT and the transaction
 * function rolls everything back.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { adopt, hostTables, sqlitePath, type Host } from './host.js';

export async function openBetterSqliteHost(url: string): Promise<Host> {
  const db = new Database(sqlitePath(url), { timeout: 30_000 });
  for (const statement of hostTables) db.exec(statement);
  await adopt(url);

  const insert = db.prepare('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)');
  const remove = db.prepare('DELETE FROM instances WHERE id = ?');
  const event = db.prepare('INSERT INTO events (instance_id, kind) VALUES (?, ?)');
  const create = db.transaction((id: string, project: string, name: string, beforeCommit?: () => void) => {
    insert.run(id, project, name);
    event.run(id, 'created');
    beforeCommit?.();
  });
  const destroy = db.transaction((id: string) => {
    const { changes } = remove.run(id);
    if (changes === 1) event.run(id, 'deleted');
    return changes === 1;
  });

  return {
    async create(project, name, beforeCommit) {
      const id = randomUUID();
      // IMMEDIATE: the write lock first, so two processes never both hold a read lock and wait.
      create.immediate(id, project, name, beforeCommit);
      return id;
    },
    remove: async (id) => destroy.immediate(id),
    close: async () => {
      db.close();
    },
  };
}
