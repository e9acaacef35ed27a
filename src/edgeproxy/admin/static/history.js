// A set's activations, activities (who did what, when) and associations (which edge nodes use it).
import { get } from "./api.js";
import { badge, h, table, time } from "./dom.js";
import { setHeader } from "./caset.js";

const WORDS = {
  CREATE_CA_SET: "Created the CA set",
  CREATE_CA_SET_VERSION: "Created a version",
  UPDATE_CA_SET_VERSION: "Changed a version",
  CLONE_CA_SET_VERSION: "Cloned a version",
  ACTIVATE_CA_SET_VERSION: "Activated a version",
  DEACTIVATE_CA_SET_VERSION: "Deactivated a version",
  DELETE_CA_SET: "Deleted the CA set",
  ADD_CRL: "Added a CRL",
  DELETE_CRL: "Deleted a CRL",
  BLOCK_CERTIFICATE: "Blocked a certificate",
  UNBLOCK_CERTIFICATE: "Unblocked a certificate",
  BIND_EDGE_CERTIFICATE: "Bound an edge certificate to the set",
  UNBIND_EDGE_CERTIFICATE: "Unbound an edge certificate from the set",
};

export function statusBadge(status) {
  return badge(status, { COMPLETE: "ok-badge", FAILED: "error-badge", IN_PROGRESS: "staging" }[status] || "off");
}

export async function activationsPage(main, setId) {
  await setHeader(main, setId, "/activations");
  const { activations } = await get(`/ca-sets/${setId}/activations`);
  const rows = activations.map((a) => h("tr", {},
    h("th", { scope: "row" }, `#${a.activationId}`),
    h("td", {}, a.activationType === "ACTIVATE" ? "Activate" : "Deactivate", ` version ${a.version}`),
    h("td", {}, a.network.toLowerCase()),
    h("td", {}, statusBadge(a.activationStatus), ` ${a.percentComplete}%`,
      a.failureReason ? h("div", { class: "error" }, a.failureReason) : null,
      a.validation.warnings.map((w) => h("div", { class: "warn small" }, w.detail))),
    h("td", {}, a.createdBy, h("div", { class: "small" }, time(a.createdDate))),
    h("td", {}, time(a.completedDate))));
  main.append(table("!Activations", ["Activation", "What", "Network", "Status", "Started", "Finished"], rows,
    "No activation yet. Open a version and use Activate."));
}

export async function activitiesPage(main, setId) {
  await setHeader(main, setId, "/activities");
  const { activities } = await get(`/ca-sets/${setId}/activities`);
  const rows = activities.map((a) => h("tr", {},
    h("td", {}, time(a.activityDate)),
    h("th", { scope: "row" }, a.activityBy),
    h("td", {}, WORDS[a.type] || a.type, a.version ? ` (version ${a.version})` : "",
      a.edgeCertificate ? ` (edge certificate ${a.edgeCertificate})` : "",
      a.acknowledgedRefusals ? h("div", { class: "warn small" }, `Acknowledged that ${a.acknowledgedRefusals} client(s) seen would be refused`) : null),
    h("td", {}, a.network ? a.network.toLowerCase() : "—")));
  main.append(table("!Activities", ["When", "Who", "What", "Network"], rows, "No activity yet."));
}

export async function associationsPage(main, setId) {
  await setHeader(main, setId, "/associations");
  const { associations } = await get(`/ca-sets/${setId}/associations`);
  const rows = associations.map((a) => h("tr", {},
    h("th", { scope: "row" }, a.edgeCertificate),
    h("td", {}, a.hostnames.join(", ")),
    h("td", {}, a.node ?? (a.nodes.length ? a.nodes.join(", ") : "none serving it yet")),
    h("td", {}, a.network.toLowerCase())));
  main.append(table("!Associations", ["Edge certificate", "Hostnames", "Node", "Network"], rows,
    "No live edge node binds this CA set."));
}
