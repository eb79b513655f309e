// Deployments: live state of this process (GET /admin/deployments: cooldowns, in-flight,
// the router's latency estimate, degraded backends) beside the ledger's figures of the range,
// and percentiles and the error mix of each deployment's latest requests (up to SAMPLE).
import { api } from "../api.js";
import { fmt, h, mount, notice } from "../dom.js";
import { currentRange } from "../range.js";
import { sortableTable } from "../table.js";

const SAMPLE = 1000;

export function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function sample(id, range) {
  const { data } = await api.get("requests", { deployment: id, from: range.from, to: range.to, limit: SAMPLE });
  const latency = data.map((r) => r.latency_ms).filter((v) => v !== null && v !== undefined);
  const ttft = data.map((r) => r.ttft_ms).filter((v) => v !== null && v !== undefined);
  const errors = {};
  for (const r of data) if (r.error_code || r.status >= 400) errors[r.error_code || String(r.status)] = (errors[r.error_code || String(r.status)] || 0) + 1;
  return { p50: percentile(latency, 50), p95: percentile(latency, 95), ttft50: percentile(ttft, 50), ttft95: percentile(ttft, 95), errors };
}

export async function render(main, { go, params }) {
  const range = currentRange(params);
  const [live, ledger] = await Promise.all([
    api.get("deployments"),
    api.get("usage", { group_by: "deployment", from: range.from, to: range.to }).catch(() => ({ data: [] })),
  ]);
  const byId = new Map(ledger.data.map((r) => [r.group, r]));
  const samples = await Promise.all(live.data.map((d) => (byId.has(d.id) ? sample(d.id, range).catch(() => null) : null)));
  const rows = live.data.map((d, i) => ({ ...d, ledger: byId.get(d.id), sample: samples[i] }));
  const mix = (d) => Object.entries(d.sample?.errors || {}).sort((a, b) => b[1] - a[1]).slice(0, 3)
    .map(([code, n]) => h("span", { class: "badge bad" }, `${code} ×${n}`));
  const state = (d) => (d.cooling ? h("span", { class: "badge bad" }, `cooling ${Math.ceil(d.cooldown_s)} s`) : h("span", { class: "badge good" }, "healthy"));
  const columns = [
    { key: "id", label: "Deployment" },
    { key: "model", label: "Model" },
    { key: "cooling", label: "State", sort: (d) => (d.cooling ? 1 : 0), show: state },
    { key: "in_flight", label: "In flight", num: true },
    { key: "latency_ewma_ms", label: "Latency now", num: true, show: (d) => fmt.ms(d.latency_ewma_ms) },
    { key: "requests", label: "Requests", num: true, sort: (d) => d.ledger?.requests ?? 0, show: (d) => fmt.int(d.ledger?.requests) },
    { key: "errors", label: "Error rate", num: true, sort: (d) => (d.ledger?.requests ? d.ledger.errors / d.ledger.requests : 0), show: (d) => fmt.pct(d.ledger?.requests ? d.ledger.errors / d.ledger.requests : NaN) },
    { key: "p50", label: "p50 / p95", num: true, sort: (d) => d.sample?.p95 ?? 0, show: (d) => (d.sample ? `${fmt.ms(d.sample.p50)} / ${fmt.ms(d.sample.p95)}` : "–") },
    { key: "ttft", label: "TTFT p50 / p95", num: true, sort: (d) => d.sample?.ttft95 ?? 0, show: (d) => (d.sample?.ttft50 != null ? `${fmt.ms(d.sample.ttft50)} / ${fmt.ms(d.sample.ttft95)}` : "–") },
    { key: "mix", label: "Error mix", nosort: true, show: mix },
    { key: "cost", label: "Spend", num: true, sort: (d) => d.ledger?.cost_usd ?? 0, show: (d) => fmt.usd(d.ledger?.cost_usd) },
  ];
  const degraded = Object.entries(live.degraded || {}).filter(([, down]) => down).map(([name]) => name);
  mount(main,
    h("h1", {}, "Deployments"),
    h("p", { class: "muted" }, `In flight in this process: ${live.in_flight ?? "–"}. Ledger figures: last ${range.name}; percentiles and error mix from each deployment's latest ${SAMPLE} requests.`),
    degraded.length ? notice(`Degraded backends (running on their fallback): ${degraded.join(", ")}`, "warn") : null,
    h("div", { class: "scroll" }, sortableTable(columns, rows, { id: "deployments", onRow: (d) => go("requests", "", { deployment: d.id }) })));
}
