// Small DOM helpers: elements are built, never parsed from strings, so API text is never markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function mount(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

export function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = "";
  window.setTimeout(() => { region.textContent = text; }, 50);
}

// A time in the viewer's zone, with the UTC time on hover.
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  const utc = date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  return h("time", { datetime: iso, title: utc }, date.toLocaleString());
}

export function daysUntil(iso) {
  return Math.floor((new Date(iso).getTime() - Date.now()) / 86400000);
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

// On a phone a wide table scrolls sideways inside its wrapper: the wrapper is a named region that
// takes focus, so that keyboard users can scroll it too.
export function table(caption, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap", role: "region", tabindex: "0", "aria-label": caption.replace(/^!/, "") },
    h("table", {},
      h("caption", { class: caption.startsWith("!") ? "visually-hidden" : "" }, caption.replace(/^!/, "")),
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows)));
}

// An API problem in words, near what it concerns: title, detail, and each listed error.
export function problem(error, intro) {
  const box = h("div", { class: "problem", role: "alert" });
  if (intro) box.append(h("p", { class: "problem-intro" }, intro));
  box.append(h("p", {}, h("strong", {}, error.title || "Error"), ": ", error.detail || String(error)));
  const items = (error.errors || []).filter((e) => e.detail && e.detail !== error.detail);
  if (items.length) box.append(h("ul", {}, items.map((e) => h("li", {}, e.detail))));
  for (const a of error.associations || []) {
    const where = [a.node ? `on node ${a.node}` : null, a.network ? `(${a.network.toLowerCase()})` : null].filter(Boolean).join(" ");
    box.append(h("p", {}, `In use by edge certificate ${a.edgeCertificate}${where ? ` ${where}` : ""}`));
  }
  return box;
}

export function heading(text, ...extra) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, text), ...extra);
}

export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null);
}

export function checkbox(label, checked, hint) {
  const id = `c-${Math.random().toString(36).slice(2, 9)}`;
  const input = h("input", { type: "checkbox", id, checked });
  const wrap = h("div", { class: "check" }, input, h("label", { for: id }, label),
    hint ? h("p", { class: "hint" }, hint) : null);
  return { wrap, input };
}

// A modal dialog; resolves when closed. `build(close)` fills it.
export function dialog(title, build) {
  const titleId = `d-${Math.random().toString(36).slice(2, 9)}`;
  const box = h("dialog", { "aria-labelledby": titleId });
  return new Promise((resolve) => {
    const close = (value) => { box.close(); box.remove(); resolve(value); };
    box.append(h("h2", { id: titleId }, title), ...[build(close)].flat(Infinity));
    box.addEventListener("cancel", (event) => { event.preventDefault(); close(null); });
    document.body.append(box);
    box.showModal();
  });
}
