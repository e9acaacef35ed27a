// The differences between two versions of a set, as the API's diff gives them: certificates added,
// removed and unchanged (by SHA-256 fingerprint, with their subjects), and the flags that changed.
import { get } from "./api.js";
import { field, h, mount, table } from "./dom.js";
import { setHeader } from "./caset.js";

const FLAGS = {
  requireRootCertificate: "Require root certificate",
  allowInsecureSha1: "Allow SHA-1 (insecure)",
};
const yesNo = (value) => (value ? "Yes" : "No");

// The route's `from` query, or the version before this one.
export async function diffPage(main, setId, number, from) {
  const set = await setHeader(main, setId, "");
  const { versions } = await get(`/ca-sets/${setId}/versions`);
  const others = versions.map((v) => v.version).filter((v) => v !== number);
  const lower = others.filter((v) => v < number);
  const before = from ?? (lower.length ? Math.max(...lower) : Math.min(...others));
  main.append(h("h2", {}, `Version ${number}: what changed`));
  if (!others.length) {
    main.append(h("p", { class: "empty" }, `${set.caSetName} has no other version to compare with.`));
    return;
  }
  main.append(compareForm(setId, number, others, before));
  const diff = await get(`/ca-sets/${setId}/versions/${number}/diff?from=${before}`);
  const certs = (caption, list, empty) => table(caption, ["Subject", "SHA-256 fingerprint"],
    list.map((c) => h("tr", {}, h("th", { scope: "row" }, c.subject), h("td", {}, h("code", { class: "fingerprint" }, c.fingerprint)))),
    empty);
  main.append(
    h("p", {}, "From ", h("a", { href: `#/ca-sets/${setId}/versions/${diff.from}` }, `version ${diff.from}`),
      " to ", h("a", { href: `#/ca-sets/${setId}/versions/${diff.to}` }, `version ${diff.to}`),
      `: ${diff.added.length} added, ${diff.removed.length} removed, ${diff.unchanged.length} unchanged, ${diff.flags.length} setting(s) changed.`),
    h("section", { class: "diff-flags", "aria-labelledby": "flags-h" }, h("h3", { id: "flags-h" }, "Settings"),
      table("!Settings changed", ["Setting", `Version ${diff.from}`, `Version ${diff.to}`],
        diff.flags.map((f) => h("tr", {}, h("th", { scope: "row" }, FLAGS[f.name] || f.name), h("td", {}, yesNo(f.from)), h("td", {}, yesNo(f.to)))),
        "No setting changed.")),
    h("section", { class: "diff-added", "aria-labelledby": "added-h" }, h("h3", { id: "added-h" }, `Added (${diff.added.length})`),
      certs("!Certificates added", diff.added, "No certificate added.")),
    h("section", { class: "diff-removed", "aria-labelledby": "removed-h" }, h("h3", { id: "removed-h" }, `Removed (${diff.removed.length})`),
      diff.removed.length ? h("p", { class: "warn" }, `Clients whose chains end at these certificates are refused once version ${diff.to} is active.`) : null,
      certs("!Certificates removed", diff.removed, "No certificate removed.")),
    h("section", { class: "diff-unchanged", "aria-labelledby": "unchanged-h" }, h("h3", { id: "unchanged-h" }, `Unchanged (${diff.unchanged.length})`),
      certs("!Certificates unchanged", diff.unchanged, "No certificate in common.")));
}

function compareForm(setId, number, others, before) {
  const choice = h("select", {}, others.map((v) => h("option", { value: v, selected: v === before }, `Version ${v}`)));
  const form = h("form", { class: "filters" }, field("Compare with", choice),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Show differences")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/ca-sets/${setId}/versions/${number}/diff?from=${choice.value}`;
  });
  return form;
}
