import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** Distinct in light and dark themes (Okabe–Ito, readable by most colour-blind people), then repeated. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];

export interface Series {
  readonly label: string;
  readonly values: readonly number[];
}

const cssVar = (name: string): string => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** A line per series over days (x: Unix seconds), redrawn on data, theme and width changes. */
export const DailyChart = ({ days, series, format, title }: { days: readonly number[]; series: readonly Series[]; format: (value: number) => string; title: string }) => {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    let plot: uPlot | null = null;
    const draw = () => {
      plot?.destroy();
      const text = cssVar('--text');
      const grid = cssVar('--grid');
      const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      plot = new uPlot(
        {
          width: Math.max(280, element.clientWidth),
          height: 280,
          scales: { x: { time: true } },
          axes: [axis, { ...axis, size: 80, values: (_u, ticks) => ticks.map(format) }],
          series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { size: 5 }, value: (_u: uPlot, v: number | null) => (v === null ? '—' : format(v)) }))],
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
  }, [days, series, format]);
  return <div ref={box} class="chart" role="img" aria-label={title} />;
};
