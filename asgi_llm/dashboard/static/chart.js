// Charts as SVG built here: a line over time and a sparkline. A few dozen lines instead of
// a charting library: nothing to vendor, nothing inline for the CSP to refuse.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function lineChart(points, { format = String, label = "" } = {}) {
  const W = 400, H = 160, L = 48, B = 22, T = 8, R = 8;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  const ys = points.map((p) => p.y);
  const max = Math.max(1e-9, ...ys);
  const x = (i) => L + (points.length <= 1 ? 0 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    root.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(max * f), y2: y(max * f) }));
    const t = svg("text", { class: "axis", x: L - 4, y: y(max * f) + 3, "text-anchor": "end" });
    t.textContent = format(max * f);
    root.append(t);
  }
  if (points.length) {
    const path = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.y).toFixed(1)}`).join("");
    root.append(svg("path", { class: "area", d: `${path}L${x(points.length - 1)},${y(0)}L${x(0)},${y(0)}Z` }));
    root.append(svg("path", { class: "line", d: path }));
    for (const i of [0, points.length - 1]) {
      const t = svg("text", { class: "axis", x: x(i), y: H - 6, "text-anchor": i ? "end" : "start" });
      t.textContent = points[i].label;
      root.append(t);
    }
  }
  return root;
}

export function sparkline(values) {
  const W = 100, H = 24;
  const root = svg("svg", { class: "spark", viewBox: `0 0 ${W} ${H}` });
  if (values.length < 2) return root;
  const max = Math.max(1e-9, ...values);
  const d = values.map((v, i) => `${i ? "L" : "M"}${((i * W) / (values.length - 1)).toFixed(1)},${(H - 2 - ((H - 4) * v) / max).toFixed(1)}`).join("");
  root.append(svg("path", { class: "line", d }));
  return root;
}
