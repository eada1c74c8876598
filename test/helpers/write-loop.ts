// Child process for the kill -9 test: rewrites boot files through a RootTarget forever,
// alternating two versions, and says "ready" once a few rounds are done.
import { RootTarget } from '../../src/targets/root-target.js';

const [root, ...paths] = process.argv.slice(2);
const t = new RootTarget(root!);
const versions = (p: string) => [`old ${p}\n` + 'a'.repeat(256 * 1024) + '\n', `new ${p}\n` + 'b'.repeat(256 * 1024) + '\n'];
let round = 0;
for (;;) {
  for (const p of paths) await t.writeFile(p, versions(p)[round % 2]!, { backup: true });
  if (++round === 3) process.stdout.write('ready\n');
}
