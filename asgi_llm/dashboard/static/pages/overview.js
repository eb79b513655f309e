// Overview: totals of the range and their course over time, from GET /admin/usage.
import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { fmt, h, mount, tile } from "../dom.js";
import { currentRange, rangePicker } from "../range.js";

export function totals(rows) {
  const t = { requests: 0, errors: 0, cache_hits: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, saved_usd: 0 };
  for (const r of rows) for (const k of Object.keys(t)) t[k] += r[k] || 0;
  return t;
}

function label(group, bucket) {
  return bucket === "hour" ? String(group).slice(11, 16) || String(group) : String(group).slice(5, 10) || String(group);
}

export async function render(main, { params, go }) {
  const range = currentRange(params);
  const { data } = await api.get("usage", { group_by: range.bucket, from: range.from, to: range.to });
  const rows = [...data].sort((a, b) => String(a.group).localeCompare(String(b.group)));
  const t = totals(rows);
  const series = (f) => rows.map((r) => ({ label: label(r.group, range.bucket), y: f(r) }));
  const chart = (title, f, format) => h("div", { class: "card chart" }, h("h2", {}, title), lineChart(series(f), { format, label: title }));
  const valued = (label, shown, raw, id) => {
    const el = tile(label, shown, id);
    el.setAttribute("data-value", String(raw));
    return el;
  };
  mount(main,
    h("div", { class: "toolbar" }, h("h1", {}, "Overview"), rangePicker(params, (name) => go("overview", "", { range: name }))),
    h("div", { class: "tiles" },
      valued("Requests", fmt.int(t.requests), t.requests, "requests"),
      valued("Tokens", fmt.int(t.input_tokens + t.output_tokens), t.input_tokens + t.output_tokens, "tokens"),
      valued("Spend", fmt.usd(t.cost_usd), t.cost_usd.toFixed(6), "spend"),
      valued("Error rate", fmt.pct(t.requests ? t.errors / t.requests : NaN), t.errors, "errors"),
      valued("Cache hit rate", fmt.pct(t.requests ? t.cache_hits / t.requests : NaN), t.cache_hits, "cache_hits"),
      valued("Saved by cache", fmt.usd(t.saved_usd), t.saved_usd.toFixed(6), "saved")),
    h("div", { class: "charts" },
      chart("Requests", (r) => r.requests, (v) => fmt.int(Math.round(v))),
      chart("Tokens", (r) => r.input_tokens + r.output_tokens, (v) => fmt.int(Math.round(v))),
      chart("Spend (USD)", (r) => r.cost_usd, (v) => "$" + v.toFixed(2)),
      chart("Error rate", (r) => (r.requests ? r.errors / r.requests : 0), fmt.pct),
      chart("Cache hit rate", (r) => (r.requests ? r.cache_hits / r.requests : 0), fmt.pct),
      chart("Saved by cache (USD)", (r) => r.saved_usd, (v) => "$" + v.toFixed(2))));
}
