import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** Distinct in light and dark themes (Okabe–Ito, readable by most colour-blind people), then repeated. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];

/** More lines than this are unreadable (the palette repeats after 8): a chart sums the smallest groups as "other". */
export const MAX_SERIES = 7;

export interface Series {
  readonly label: string;
  readonly values: readonly number[];
}

const cssVar = (name: string): string => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

const DAY = 86_400;
/** A day as the server counts it (UTC), whatever the browser's time zone: `2026-12-04`. */
const dayOf = (seconds: number): string => new Date(seconds * 1000).toISOString().slice(0, 10);
/** Tick steps that land on whole units (a nano-dollar, a token, a request): 1, 2 and 5 × 10ⁿ. */
const WHOLE_STEPS = Array.from({ length: 16 }, (_, n) => [1, 2, 5].map((m) => m * 10 ** n)).flat();

/** A line per series over days (x: Unix seconds), redrawn on data, theme and width changes. */
export const DailyChart = ({
  days,
  series,
  format,
  title,
  whole = true,
}: {
  days: readonly number[];
  series: readonly Series[];
  format: (value: number) => string;
  title: string;
  /** The values are whole units (nano-dollars, tokens, requests): ticks land on them. False for a fraction (a rate). */
  whole?: boolean;
}) => {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    let plot: uPlot | null = null;
    const allZero = series.every((s) => s.values.every((v) => !v));
    const draw = () => {
      plot?.destroy();
      const text = cssVar('--text');
      const grid = cssVar('--grid');
      const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      plot = new uPlot(
        {
          width: Math.max(280, element.clientWidth),
          height: 280,
          // Days are UTC midnights: drawn in UTC, so no browser west of Greenwich shows them on the day before.
          tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC'),
          // From zero, in whole units: all-zero data is a flat line at 0 with one tick, not an axis of fractions of a
          // nano-dollar.
          scales: { x: { time: true }, y: whole ? { range: (_u, _min, max) => uPlot.rangeNum(0, Math.max(max, 1), 0.1, true) } : {} },
          axes: [
            { ...axis, incrs: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY], values: (_u, ticks) => ticks.map((t) => dayOf(t).slice(5)) },
            { ...axis, size: 80, ...(whole && { incrs: WHOLE_STEPS }), ...(allZero && { splits: () => [0] }), values: (_u, ticks) => ticks.map(format) },
          ],
          series: [{ value: (_u: uPlot, v: number | null) => (v === null ? '—' : dayOf(v)) }, ...series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { size: 5 }, value: (_u: uPlot, v: number | null) => (v === null ? '—' : format(v)) }))],
          legend: { live: true },
          cursor: { drag: { x: false, y: false } },
        },
        [days as number[], ...series.map((s) => s.values as number[])],
        element,
      );
    };
    draw();
    const scheme = matchMedia('(prefers-color-scheme: dark)');
    scheme.addEventListener('change', draw);
    let width = element.clientWidth;
    const resize = new ResizeObserver(() => {
      if (Math.abs(element.clientWidth - width) < 8) return;
      width = element.clientWidth;
      plot?.setSize({ width: Math.max(280, width), height: 280 });
    });
    resize.observe(element);
    return () => {
      scheme.removeEventListener('change', draw);
      resize.disconnect();
      plot?.destroy();
    };
  }, [days, series, format, whole]);
  return <div ref={box} class="chart" role="img" aria-label={title} />;
};
