// A sortable table: click a header to sort by it (again to reverse). Rows are data objects;
// each column says how to show and how to sort its cell.
import { h } from "./dom.js";

export function sortableTable(columns, rows, { onRow, sortBy, desc = true, id } = {}) {
  let key = sortBy ?? null;
  let descending = desc;
  const table = h("table", { "data-table": id });
  const render = () => {
    const sorted = key === null ? rows : [...rows].sort((a, b) => {
      const col = columns.find((c) => c.key === key);
      const va = col.sort ? col.sort(a) : a[key];
      const vb = col.sort ? col.sort(b) : b[key];
      const cmp = typeof va === "number" && typeof vb === "number" ? va - vb : String(va ?? "").localeCompare(String(vb ?? ""));
      return descending ? -cmp : cmp;
    });
    const head = h("tr", {}, columns.map((c) => h("th", {
      class: [c.num ? "num" : "", c.nosort ? "" : "sortable", c.key === key ? (descending ? "sorted-desc" : "sorted-asc") : ""].join(" "),
      "data-key": c.key,
      onclick: c.nosort ? undefined : () => { descending = c.key === key ? !descending : true; key = c.key; render(); },
    }, c.label)));
    const body = sorted.map((row) => h("tr", {
      class: onRow ? "clickable" : "",
      onclick: onRow ? () => onRow(row) : undefined,
    }, columns.map((c) => h("td", { class: c.num ? "num" : "" }, c.show ? c.show(row) : row[c.key] ?? "–"))));
    table.replaceChildren(h("thead", {}, head), h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "No data in this range."))));
  };
  render();
  return table;
}
