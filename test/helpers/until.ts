/**
 * Wait for a recorded point of a run (a file appearing), checking every 10 ms; fail at once if the
 * run ends first. The test then changes the world (a signal, a second run): no timing is assumed.
 */
export async function until(cond: () => boolean, exited: Promise<unknown>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  while (!cond()) {
    if (gone) throw new Error('the run ended before reaching the point the test waits for');
    await new Promise((r) => setTimeout(r, 10));
  }
}
