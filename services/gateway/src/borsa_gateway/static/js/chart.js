// Cumulative realised PnL over time as an inline SVG: one line per quote currency (USD is never added to USDT).
const NS = "http://www.w3.org/2000/svg";
const WIDE = 640;
const H = 260;
const PAD = { left: 64, right: 16, top: 16, bottom: 36 };
const COLORS = ["#1f6feb", "#b35900", "#2e7d32", "#8e24aa", "#c62828", "#00838f"];

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// trades: [{timestamp_ms, realized_pnl, symbol}], any order. Returns {series: Map(quote -> [[ms, cumulative]])}.
export function cumulative(trades) {
  const series = new Map();
  const sorted = [...trades].sort((a, b) => a.timestamp_ms - b.timestamp_ms);
  for (const t of sorted) {
    const quote = (t.symbol.split("/")[1] || "").split(":")[0];
    const points = series.get(quote) || [];
    const last = points.length ? points[points.length - 1][1] : 0;
    points.push([t.timestamp_ms, last + Number(t.realized_pnl || 0)]);
    series.set(quote, points);
  }
  return series;
}

const fmt = (n) => (Math.abs(n) >= 1000 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3));

const when = (ms) => new Date(ms).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

// `width`: the space it gets, so that its text keeps a readable size on a phone.
export function pnlChart(trades, { id = "pnl-chart", width = WIDE } = {}) {
  const W = Math.round(Math.max(300, Math.min(WIDE, width || WIDE)));
  const series = cumulative(trades);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-desc`, id, class: "chart" });
  const title = svg("title", { id: `${id}-title` }, "Cumulative realised PnL over time");
  const desc = svg("desc", { id: `${id}-desc` });
  root.append(title, desc);
  const all = [...series.values()].flat();
  if (!all.length) {
    desc.textContent = "No fills yet.";
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, "No fills yet"));
    return root;
  }
  const xs = all.map((p) => p[0]);
  const ys = [0, ...all.map((p) => p[1])];
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 60_000, x1 + 60_000];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const axes = svg("g", { class: "axes" });
  axes.append(
    svg("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(0), y2: sy(0), class: "zero" }),
    svg("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom }),
    svg("text", { x: PAD.left - 6, y: sy(y1) + 4, "text-anchor": "end" }, fmt(y1)),
    svg("text", { x: PAD.left - 6, y: sy(y0) + 4, "text-anchor": "end" }, fmt(y0)),
    svg("text", { x: PAD.left, y: H - 10, "text-anchor": "start" }, when(x0)),
    svg("text", { x: W - PAD.right, y: H - 10, "text-anchor": "end" }, when(x1)),
  );
  root.append(axes);
  const said = [];
  [...series.entries()].forEach(([quote, points], i) => {
    const color = COLORS[i % COLORS.length];
    const path = points.map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    const [lastX, lastY] = points[points.length - 1];
    root.append(
      svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, class: "series", "data-quote": quote }),
      svg("circle", { cx: sx(lastX), cy: sy(lastY), r: 3, fill: color }),
      svg("text", { x: W - PAD.right, y: PAD.top + 14 * (i + 1), "text-anchor": "end", fill: color, class: "legend" }, `${quote} ${fmt(lastY)}`),
    );
    said.push(`${quote}: ${fmt(lastY)} after ${points.length} fills`);
  });
  desc.textContent = `Cumulative realised PnL. ${said.join("; ")}.`;
  return root;
}
