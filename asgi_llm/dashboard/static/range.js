// The range picker shared by the overview and the usage tables: last 24 hours, 7 or 30 days.
import { h } from "./dom.js";

export const RANGES = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

export function currentRange(params) {
  const name = RANGES[params.get("range")] ? params.get("range") : "7d";
  const to = Math.ceil(Date.now() / 1000);
  return { name, from: to - RANGES[name], to, bucket: name === "24h" ? "hour" : "day" };
}

export function rangePicker(params, onPick) {
  const picked = currentRange(params).name;
  return h("select", { "data-range": "", onchange: (e) => onPick(e.target.value) },
    Object.keys(RANGES).map((name) => h("option", { value: name, selected: name === picked }, "Last " + name)));
}
