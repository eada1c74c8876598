import type { RunContext } from '../run/task.js';

/**
 * Stop the run for a reboot, or reboot with --reboot. `then` says what the next run does
 * ("verify and join"); `command` is how the user reboots (Alpine has no sudo). A target that
 * cannot be rebooted (a root directory) is booted by the user.
 */
export async function rebootOrStop(ctx: RunContext, reboot: boolean, then: string, command = 'sudo reboot'): Promise<void> {
  if (!ctx.target.canReboot) {
    ctx.stopAfter(`${ctx.target.label} is not rebooted (a root directory): boot the Pi from it, then run the same command again to ${then}.`);
  } else if (!reboot) {
    ctx.stopAfter(`Reboot now (\`${command}\`), then run the same command again to ${then}.`);
  } else {
    ctx.stopAfter(`Rebooting: when the Pi is back, run the same command again to ${then}.`);
    // Over SSH the connection drops as the Pi goes down: that is the reboot working.
    await ctx.target.run(['reboot'], { allowFailure: true });
  }
}
