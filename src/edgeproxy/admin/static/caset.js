// One CA set: its versions with their status per network, the ways to make a new one, rollback.
import { can, get, post } from "./api.js";
import { badge, h, heading, mount, problem, table, time } from "./dom.js";
import { deleteCaSet, versionBadges } from "./casets.js";
import { rollbackDialog } from "./rollback.js";

const TABS = [
  ["", "Versions"], ["/activations", "Activations"], ["/activities", "Activities"],
  ["/associations", "Associations"], ["/crls", "CRLs"], ["/blocked-certificates", "Blocked certificates"],
];

// The set's heading and its sub-navigation, shared by every page of one set.
export async function setHeader(main, setId, current, ...extra) {
  const set = await get(`/ca-sets/${setId}`);
  const nav = h("nav", { class: "tabs", "aria-label": `CA set ${set.caSetName}` },
    TABS.map(([suffix, label]) => h("a", {
      href: `#/ca-sets/${setId}${suffix}`, "aria-current": suffix === current ? "page" : null,
    }, label)));
  const state = set.caSetStatus === "NOT_DELETED" ? null
    : h("p", { class: "notice" }, set.caSetStatus === "DELETED" ? "This set is deleted: what follows is read-only history." : "This set is being deleted.");
  mount(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "CA certificate sets"), " / ", set.caSetName),
    heading(set.caSetName, versionBadges(set), ...extra),
    set.description ? h("p", {}, set.description) : null,
    state,
    set.warnings.map((w) => h("p", { class: "warn" }, w.detail)),
    nav);
  return set;
}

export function networkBadge(status, network) {
  return status === "ACTIVE" ? badge(`Active on ${network}`, network.toLowerCase()) : badge(`Inactive on ${network}`, "off");
}

export async function caSetPage(main, setId) {
  const set = await setHeader(main, setId, "");
  const { versions } = await get(`/ca-sets/${setId}/versions`);
  const status = h("div", { "aria-live": "polite" });
  const writable = set.caSetStatus === "NOT_DELETED";
  const actions = h("div", { class: "actions" });
  if (writable && can("editor")) {
    actions.append(h("a", { class: "button primary", href: `#/ca-sets/${setId}/versions/new` },
      versions.length ? "New version" : "Create version 1"));
  }
  if (writable && can("admin")) {
    for (const network of ["STAGING", "PRODUCTION"]) {
      if (set[`${network.toLowerCase()}Version`]) {
        actions.append(h("button", { type: "button", onclick: () => rollbackDialog(set, network) }, `Roll back on ${network.toLowerCase()}`));
      }
    }
    actions.append(h("button", { type: "button", class: "danger", onclick: () => deleteCaSet(set, status) }, "Delete CA set"));
  }
  const rows = [...versions].reverse().map((v) => h("tr", { "data-version": v.version },
    h("th", { scope: "row" }, h("a", { href: `#/ca-sets/${setId}/versions/${v.version}` }, `Version ${v.version}`),
      v.description ? h("div", { class: "muted small" }, v.description) : null),
    h("td", {}, networkBadge(v.stagingStatus, "staging"), " ", networkBadge(v.productionStatus, "production")),
    h("td", {}, `${v.certificates.length}`),
    h("td", {}, v.editable ? "Editable" : "Frozen"),
    h("td", {}, v.modifiedBy || v.createdBy, h("div", { class: "small" }, time(v.modifiedDate || v.createdDate))),
    h("td", {}, writable && can("editor")
      ? h("button", { type: "button", onclick: () => clone(setId, v.version, status), "aria-label": `Clone version ${v.version}` }, "Clone")
      : null)));
  main.append(actions, status,
    table("!Versions", ["Version", "Status", "Certificates", "State", "Last change", ""], rows,
      "This CA set has no version yet. You can activate the set only after you create a version."));
}

async function clone(setId, version, status) {
  try {
    const copy = await post(`/ca-sets/${setId}/versions/${version}/clone`);
    location.hash = `#/ca-sets/${setId}/versions/${copy.version}/edit`;
  } catch (error) {
    mount(status, problem(error, `Version ${version} was not cloned.`));
  }
}
