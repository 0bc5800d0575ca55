/**
 * What a thread wake-up costs on this machine: a Node process whose only work is an empty timer callback, at a few
 * rates, reporting its CPU time (user + system, all threads) per wake-up. On a bare-metal host that is a few µs; on a
 * VM a wake-up from idle costs far more, and every gateway pays it once per thread a request wakes (bench/README.md,
 * gateway section, issue 15 stop 25).
 *
 *   node --import tsx bench/wakeup.bench.ts [--rates 20,100,300,1000] [--seconds 5]
 *
 * Each rate runs in a fresh child process (so one rate's warm caches and compiled code do not flatter the next),
 * measured after a 1.5 s settle.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: { rates: { type: 'string', default: '20,100,300,1000' }, seconds: { type: 'string', default: '5' }, child: { type: 'string' } },
});

if (args.child !== undefined) {
  const hz = Number(args.child);
  const seconds = Number(args.seconds);
  let wakes = 0;
  let counting = false;
  const timer = setInterval(() => {
    if (counting) wakes++;
  }, 1000 / hz);
  setTimeout(() => {
    counting = true;
    const cpu0 = process.cpuUsage();
    setTimeout(() => {
      clearInterval(timer);
      const cpu = process.cpuUsage(cpu0);
      process.stdout.write(JSON.stringify({ hz, wakes, userUs: cpu.user, systemUs: cpu.system }));
    }, seconds * 1000);
  }, 1500);
} else {
  const rates = args.rates.split(',').map(Number);
  if (rates.some((r) => !(r > 0 && r <= 10_000))) throw new Error(`--rates must be numbers in (0, 10000] (got ${args.rates})`);
  process.stdout.write(`Node ${process.version}; an empty timer callback, ${args.seconds} s per rate, CPU of the whole process\n\n`);
  process.stdout.write('| wake-ups/s | wake-ups | CPU per wake-up | of which system |\n|---:|---:|---:|---:|\n');
  for (const hz of rates) {
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', String(hz), '--seconds', args.seconds], { encoding: 'utf8' });
    const r = JSON.parse(out) as { hz: number; wakes: number; userUs: number; systemUs: number };
    const per = (us: number) => `${(us / r.wakes).toFixed(1)} µs`;
    process.stdout.write(`| ${hz} | ${r.wakes} | ${per(r.userUs + r.systemUs)} | ${per(r.systemUs)} |\n`);
  }
}
