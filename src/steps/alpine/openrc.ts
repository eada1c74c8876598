import { done, todo, type Task } from '../../run/task.js';
import { readText } from '../../targets/target.js';

export const RC_CONF = '/etc/rc.conf';
const UNIFIED = 'rc_cgroup_mode="unified"';

/** Set rc_cgroup_mode to unified, replacing any (commented) rc_cgroup_mode line; other lines kept. */
export function setUnifiedMode(text: string): string {
  const lines = text.split('\n');
  const active = lines.findIndex((l) => /^\s*rc_cgroup_mode=/.test(l));
  const commented = lines.findIndex((l) => /^\s*#\s*rc_cgroup_mode=/.test(l));
  const at = active !== -1 ? active : commented;
  if (at !== -1) lines[at] = UNIFIED;
  else {
    if (lines.at(-1) === '') lines.pop();
    lines.push(UNIFIED, '');
  }
  return lines.join('\n');
}

export function isUnified(text: string | undefined): boolean {
  const m = [...(text ?? '').matchAll(/^\s*rc_cgroup_mode=["']?([a-z]+)["']?\s*$/gm)].at(-1);
  return m?.[1] === 'unified';
}

/** k0s >= 1.36 rejects cgroup v1: OpenRC's cgroups service must mount the unified hierarchy. */
export function cgroupModeTask(): Task {
  return {
    id: 'cgroup-mode',
    title: `${UNIFIED} in ${RC_CONF} (cgroup v2, as k0s >= 1.36 requires)`,
    async check(ctx) {
      const text = (await readText(ctx.target, RC_CONF));
      return isUnified(text) ? done(`${RC_CONF} has ${UNIFIED}`) : todo(`${RC_CONF} does not set ${UNIFIED}`);
    },
    async apply(ctx) {
      const text = (await readText(ctx.target, RC_CONF)) ?? '';
      await ctx.target.writeFile(RC_CONF, setUnifiedMode(text), { mode: 0o644 });
    },
  };
}

/** A service OpenRC has started has an entry in /run/openrc/started. */
export function serviceStartedTask(service: string): Task {
  const mark = `/run/openrc/started/${service}`;
  return {
    id: `${service}-started`,
    title: `${service} service started`,
    async check(ctx) {
      return (await ctx.target.stat(mark)) ? done(`${mark} exists`) : todo(`${service} is not started`);
    },
    async apply(ctx) {
      await ctx.target.run(['rc-service', service, 'start']);
    },
  };
}

/** `rc-update add SERVICE LEVEL` makes /etc/runlevels/LEVEL/SERVICE (saved by lbu: a symlink under /etc). */
export function serviceInRunlevelTask(service: string, level: string): Task {
  const link = `/etc/runlevels/${level}/${service}`;
  return {
    id: `${service}-${level}`,
    title: `${service} in the ${level} runlevel`,
    async check(ctx) {
      return (await ctx.target.stat(link)) ? done(`${link} exists`) : todo(`${service} is not in the ${level} runlevel`);
    },
    async apply(ctx) {
      await ctx.target.run(['rc-update', 'add', service, level]);
    },
  };
}
