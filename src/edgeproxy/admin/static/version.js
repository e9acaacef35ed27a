// A version: its certificates (subject, issuer, validity, fingerprint), the chain structure, and
// its actions (activate, deactivate, edit, clone, delete, compare).
import { can, del, get, post } from "./api.js";
import { badge, daysUntil, h, mount, problem, table, time } from "./dom.js";
import { networkBadge, setHeader } from "./caset.js";
import { activateDialog, deactivateDialog } from "./activate.js";

export async function versionPage(main, setId, number) {
  const version = await get(`/ca-sets/${setId}/versions/${number}`);
  const set = await setHeader(main, setId, "");
  const status = h("div", { "aria-live": "polite" });
  const writable = set.caSetStatus === "NOT_DELETED";
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Actions" });
  if (writable && can("admin")) {
    actions.append(h("button", { type: "button", class: "primary", onclick: () => activateDialog(set, version) }, `Activate version ${number}`));
    for (const network of ["STAGING", "PRODUCTION"]) {
      if (version[`${network.toLowerCase()}Status`] === "ACTIVE") {
        actions.append(h("button", { type: "button", class: "danger", onclick: () => deactivateDialog(set, version, network) },
          `Deactivate version ${number} on ${network.toLowerCase()}`));
      }
    }
  }
  if (writable && can("editor")) {
    if (version.editable) {
      actions.append(h("a", { class: "button", href: `#/ca-sets/${setId}/versions/${number}/edit` }, "Edit version"));
      actions.append(h("button", { type: "button", class: "danger", onclick: () => deleteVersion(setId, number, status) }, "Delete version"));
    }
    actions.append(h("button", {
      type: "button",
      onclick: async () => {
        try {
          const copy = await post(`/ca-sets/${setId}/versions/${number}/clone`);
          location.hash = `#/ca-sets/${setId}/versions/${copy.version}/edit`;
        } catch (error) { mount(status, problem(error, "The version was not cloned.")); }
      },
    }, "Clone to a new version"));
  }
  if (set.latestVersion > 1) {
    actions.append(h("a", { class: "button", href: `#/ca-sets/${setId}/versions/${number}/diff` }, "Compare with another version"));
  }
  main.append(
    h("div", { class: "page-head" }, h("h2", {}, `Version ${number}`),
      networkBadge(version.stagingStatus, "staging"), networkBadge(version.productionStatus, "production")),
    h("p", { class: "muted" }, version.editable
      ? "Editable: not activated yet."
      : "Frozen: this version has been activated, so it can no longer change. Clone it to make changes."),
    actions, status,
    h("dl", { class: "facts" },
      h("dt", {}, "Description"), h("dd", {}, version.description || "—"),
      h("dt", {}, "Allow SHA-1 (insecure)"), h("dd", {}, version.allowInsecureSha1 ? "Yes" : "No"),
      h("dt", {}, "Require root certificate"), h("dd", {}, version.requireRootCertificate ? "Yes" : "No"),
      h("dt", {}, "Created"), h("dd", {}, version.createdBy, " · ", time(version.createdDate)),
      h("dt", {}, "Last change"), h("dd", {}, version.modifiedBy || "—", " · ", time(version.modifiedDate))),
    version.validation.warnings.map((w) => h("p", { class: "warn" }, w.detail)),
    h("h3", {}, "Chain structure"), chain(version.certificates),
    h("h3", {}, "Certificates"), certificates(version.certificates));
}

function certificates(list) {
  const rows = list.map((c) => {
    const days = daysUntil(c.endDate);
    return h("tr", {},
      h("th", { scope: "row" }, c.subject, c.description ? h("div", { class: "small muted" }, c.description) : null),
      h("td", {}, c.issuer),
      h("td", {}, time(c.startDate), " – ", time(c.endDate),
        days < 0 ? h("div", { class: "error" }, "Expired") : days <= 30 ? h("div", { class: "warn" }, `Expires in ${days} days`) : null),
      h("td", {}, h("code", { class: "fingerprint" }, c.fingerprint)),
      h("td", {}, c.signatureAlgorithm));
  });
  return table("!Certificates of this version", ["Subject", "Issuer", "Validity", "SHA-256 fingerprint", "Signature"], rows, "No certificates.");
}

// Which certificate issued which, by name: roots (self-signed) marked, and certificates whose
// issuer is not in the set shown as trust anchors of their own.
export function chain(list) {
  const bySubject = new Map(list.map((c) => [c.subject, c]));
  const children = new Map();
  const tops = [];
  for (const c of list) {
    const parent = c.issuer !== c.subject ? bySubject.get(c.issuer) : undefined;
    if (parent) children.set(parent.fingerprint, [...(children.get(parent.fingerprint) || []), c]);
    else tops.push(c);
  }
  const seen = new Set();
  const node = (c) => {
    if (seen.has(c.fingerprint)) return null;
    seen.add(c.fingerprint);
    const kind = c.issuer === c.subject ? badge("Root (self-signed)", "root")
      : bySubject.has(c.issuer) ? badge("Intermediate", "off") : badge("Issuer not in this set", "warn-badge");
    const kids = children.get(c.fingerprint) || [];
    return h("li", {}, h("span", { class: "chain-node" }, kind, " ", c.subject),
      kids.length ? h("ul", {}, kids.map(node)) : null);
  };
  return h("ul", { class: "chain", "aria-label": "Chain structure" }, tops.map(node));
}

async function deleteVersion(setId, number, status) {
  if (!window.confirm(`Delete version ${number}? It has never been activated.`)) return;
  try {
    await del(`/ca-sets/${setId}/versions/${number}`);
    location.hash = `#/ca-sets/${setId}`;
  } catch (error) {
    mount(status, problem(error, "The version was not deleted."));
  }
}
