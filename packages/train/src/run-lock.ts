import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * The lock of a run folder: a file created exclusively (`O_CREAT | O_EXCL`), holding the holder's
 * pid, host, start time and command. One process at a time trains in a run folder.
 */
export const RUN_LOCK = 'dropclass.lock';

export interface LockHolder {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** Another live process holds the run folder's lock. */
export class RunLockedError extends Error {}

export interface RunLock {
  file: string;
  release(): void;
}

/** Whether a process of this host is alive (EPERM: alive, but another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const holder = JSON.parse(await readFile(file, 'utf8')) as LockHolder;
    return Number.isInteger(holder.pid) && typeof holder.host === 'string' ? holder : undefined;
  } catch {
    return undefined;
  }
}

const describe = (h: LockHolder) => `process ${h.pid} on ${h.host} (${h.command}, since ${h.started})`;

/**
 * Whether the lock is held by a live process: throws a {@link RunLockedError} naming the holder
 * when it is (`doing` says what was refused). A lock left by a process that is gone (on this host)
 * is stale: returns its holder, so the caller can say so.
 */
export async function checkRunLock(dir: string, doing: string): Promise<{ stale?: LockHolder }> {
  const file = join(dir, RUN_LOCK);
  const holder = await readHolder(file);
  if (!holder) {
    // No lock, or one being written this instant (its creator writes it right after creating it).
    const raw = await readFile(file, 'utf8').catch(() => undefined);
    if (raw === undefined) return {};
    throw new RunLockedError(`${dir} is locked (${file} exists but names no holder: "${raw.slice(0, 80)}"); ${doing} was refused. If no dropclass process uses ${dir}, remove ${file}.`);
  }
  if (holder.host === hostname() && !alive(holder.pid)) return { stale: holder };
  if (holder.host === hostname() && holder.pid === process.pid) return {};
  const elsewhere = holder.host === hostname() ? '' : ` (on another machine: whether it still runs cannot be told from here; if it does not, remove ${file})`;
  throw new RunLockedError(`${dir} is in use by ${describe(holder)}${elsewhere}; ${doing} was refused. Wait for it to finish or stop it, or choose another --out.`);
}

/**
 * Takes the lock of a run folder for this process, or throws a {@link RunLockedError} naming the
 * live process that holds it. A stale lock (its process gone, on this host) is named in `log` and
 * taken over. The lock is released by `release()`, and when the process exits.
 */
export async function acquireRunLock(dir: string, command: string, log: (line: string) => void): Promise<RunLock> {
  const file = join(dir, RUN_LOCK);
  const holder: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command };
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const { stale } = await checkRunLock(dir, `${command}`).catch(async (e: unknown) => {
        // A lock file just created and not yet written: let its creator finish.
        if (e instanceof RunLockedError && /names no holder/.test(e.message) && attempt < 4) {
          await new Promise((r) => setTimeout(r, 100));
          return { stale: undefined };
        }
        throw e;
      });
      if (stale) {
        log(`${file}: a stale lock of ${describe(stale)}, which is no longer running; taken over`);
        // Renamed away first: of two processes that found it stale, one removes it.
        const aside = `${file}.stale-${process.pid}`;
        await rename(file, aside).then(() => rm(aside, { force: true }), () => undefined);
      }
      continue;
    }
    writeSync(fd, JSON.stringify(holder));
    closeSync(fd);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      process.removeListener('exit', release);
      try {
        // Only our own lock: a folder removed and claimed again meanwhile keeps its new lock.
        const current = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
        if (current.pid === holder.pid && current.host === holder.host && current.started === holder.started) unlinkSync(file);
      } catch {
        // already gone
      }
    };
    process.on('exit', release);
    return { file, release };
  }
  throw new RunLockedError(`${file}: could not take the lock after 5 tries (other processes keep taking it); try again.`);
}
