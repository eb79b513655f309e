// Building the page: elements from data with text nodes only (never parsed as HTML), so nothing
// the API returns can become markup; and the number formats every page shares.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function mount(target, ...children) {
  target.replaceChildren();
  append(target, children);
}

export const fmt = {
  int: (n) => (n ?? 0).toLocaleString("en-US"),
  usd: (n) => "$" + (n ?? 0).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 4 }),
  pct: (n) => (n === null || n === undefined || Number.isNaN(n) ? "–" : (n * 100).toFixed(1) + "%"),
  ms: (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US") + " ms"),
  // epoch seconds or an ISO 8601 string, shown as UTC to the second
  time: (t) => (t ? (typeof t === "number" ? new Date(t * 1000).toISOString() : String(t)).replace("T", " ").slice(0, 19) : "–"),
};

export function tile(label, value, id) {
  return h("div", { class: "tile", "data-tile": id }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

export function notice(text, kind = "") {
  return h("div", { class: "notice " + kind }, text);
}
