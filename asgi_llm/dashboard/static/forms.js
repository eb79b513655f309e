// Small helpers for the create and edit forms of teams and keys.
import { h } from "./dom.js";

export function field(name, label, attrs = {}) {
  return h("label", {}, label, h("input", { name, ...attrs }));
}

// The form's filled fields as a JSON body: numbers as numbers, lists split on commas.
export function formBody(form, { numbers = [], lists = [] } = {}) {
  const body = {};
  for (const [k, v] of new FormData(form)) {
    const value = String(v).trim();
    if (!value) continue;
    if (numbers.includes(k)) body[k] = Number(value);
    else if (lists.includes(k)) body[k] = value.split(",").map((s) => s.trim()).filter(Boolean);
    else body[k] = value;
  }
  return body;
}
