import type { KernelPlan, KernelState } from './plan.js';

/** `make -C TREE ARCH=arm64 [CROSS_COMPILE=…] LOCALVERSION= TARGETS…` */
export const make = (s: KernelState, p: KernelPlan, ...targets: string[]) => ['make', '-C', p.dir, ...s.builder.makeVars, 'LOCALVERSION=', ...targets];
