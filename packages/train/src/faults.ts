/**
 * Fault injection for tests: `DROPCLASS_KILL_AT=<point>:<n>` kills this process (SIGKILL, as a
 * power cut or the OOM killer would) the n-th time it reaches `point`. The points are where a run
 * writes its state: `step` (after a training step, before its metrics line), `metrics` (after the
 * line), `checkpoint` (weights written, the checkpoint pointer not yet), `pruned` (after a
 * checkpoint), `evaluated` (final evaluation done, nothing of it written) and `report` (the report
 * written, eval.json not yet). Unset, it does nothing.
 */
const reached = new Map<string, number>();

export function killPoint(point: string): void {
  const spec = process.env.DROPCLASS_KILL_AT;
  if (!spec) return;
  const [name, nth = '1'] = spec.split(':');
  if (name !== point) return;
  const count = (reached.get(point) ?? 0) + 1;
  reached.set(point, count);
  if (count === Number(nth)) process.kill(process.pid, 'SIGKILL');
}
