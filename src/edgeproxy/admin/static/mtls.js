// An edge certificate's mutual authentication on one network: the CA set, mode, on failure, OCSP,
// send CA list, identity headers, its authorization rules (read-only: the CLI and API set them);
// binding and unbinding with the change's convergence.
import { can, edge, get } from "./api.js";
import { announce, checkbox, field, h, mount, problem, table, time } from "./dom.js";

const POLL_MS = 500;
const POLL_LIMIT = 3600;

function select(options, value) {
  return h("select", {}, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

export async function mutualAuthSection(e, network) {
  const where = network.toLowerCase();
  const path = `/edge-certificates/${encodeURIComponent(e.name)}/mutual-authentication/${network}`;
  const section = h("section", { class: "card", "aria-label": `Mutual authentication on ${where}` },
    h("h3", {}, `On ${where}`));
  let binding = null;
  try {
    binding = await edge.get(path);
  } catch (error) {
    if (error.status !== 404) { section.append(problem(error)); return section; }
  }
  const summary = e.mutualAuthentication?.[network];
  if (binding) {
    section.append(h("dl", { class: "facts" },
      h("dt", {}, "Certificate set"), h("dd", {}, binding.caSetName),
      h("dt", {}, "Mode"), h("dd", {}, binding.mode),
      h("dt", {}, "On failure"), h("dd", {}, binding.onFailure),
      h("dt", {}, "OCSP"), h("dd", {}, binding.ocsp.enabled ? `on (${binding.ocsp.failureMode})` : "off"),
      h("dt", {}, "Send CA list to client"), h("dd", {}, binding.sendCaListToClient ? "Yes" : "No"),
      h("dt", {}, "Identity headers"), h("dd", {}, binding.identityHeaders.join(", ") || "none"),
      h("dt", {}, "Last change"), h("dd", {}, binding.modifiedBy || "—", " · ", time(binding.modifiedDate))));
    section.append(rulesView(binding.authorization, where));
    if (binding.latestChange) section.append(changeView(binding.latestChange));
  } else if (summary) {
    section.append(h("p", {}, `Certificate set ${summary.caSetName}, from the node's configuration file.`));
  } else {
    section.append(h("p", { class: "empty" }, `No certificate set is bound on ${where}: clients are not asked for certificates here.`));
  }
  if (e.source === "store" && can("admin")) section.append(await bindForm(path, network, binding));
  return section;
}

async function bindForm(path, network, binding) {
  const where = network.toLowerCase();
  const { caSets } = await get(`/ca-sets?activatedOn=${network}`);
  const names = caSets.map((s) => [s.caSetName, s.caSetName]);
  if (binding && !names.some(([n]) => n === binding.caSetName)) names.unshift([binding.caSetName, binding.caSetName]);
  const set = select(names, binding?.caSetName);
  const mode = select([["require", "Require a client certificate"], ["request", "Request one, decide per request"]], binding?.mode || "require");
  const onFailure = select([["deny", "Deny (403)"], ["forward", "Forward to the origin with the verify status"]], binding?.onFailure || "deny");
  const ocsp = checkbox("OCSP", binding?.ocsp.enabled || false, "Check each client certificate's revocation status with its CA's OCSP responder.");
  const ocspHard = checkbox("OCSP failure refuses the client (hard fail)", binding?.ocsp.failureMode === "hard");
  const sendList = checkbox("Send CA list to client", binding?.sendCaListToClient || false,
    "The edge tells clients the names of the set's CAs, so they can pick a certificate.");
  const headers = ["xfcc", "rfc9440"].map((name) => [name, checkbox(`Identity header: ${name}`, (binding?.identityHeaders || ["xfcc"]).includes(name))]);
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, binding ? `Save on ${where}` : `Bind on ${where}`);
  const form = h("form", { class: "bind-form" },
    h("h4", {}, binding ? "Edit" : "Set up mutual authentication"),
    names.length ? field("Certificate set", set, `Only sets with a version active on ${where} can be bound.`)
      : h("p", { class: "notice" }, `No CA set has a version active on ${where}: activate one first.`),
    field("Mode", mode), field("On failure", onFailure), ocsp.wrap, ocspHard.wrap, sendList.wrap, headers.map(([, c]) => c.wrap),
    status, h("div", { class: "actions" }, names.length ? submit : null,
      binding ? h("button", { type: "button", class: "danger", onclick: () => unbind(path, where, status) }, `Unbind on ${where}`) : null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      // What this form does not edit (the rules, verify depth, OCSP responder) is sent back as it is.
      const change = await edge.put(path, {
        ...(binding ? { authorization: binding.authorization, verifyDepth: binding.verifyDepth } : {}),
        caSetName: set.value, mode: mode.value, onFailure: onFailure.value,
        sendCaListToClient: sendList.input.checked,
        identityHeaders: headers.filter(([, c]) => c.input.checked).map(([n]) => n),
        ocsp: {
          ...(binding ? { responder: binding.ocsp.responder, checkIntermediates: binding.ocsp.checkIntermediates } : {}),
          enabled: ocsp.input.checked, failureMode: ocspHard.input.checked ? "hard" : "soft",
        },
      });
      await followChange(change, status);
    } catch (error) {
      mount(status, problem(error, `Mutual authentication on ${where} was not changed.`));
    }
    submit.disabled = false;
  });
  return form;
}

async function unbind(path, where, status) {
  if (!window.confirm(`Unbind on ${where}? The edge certificate then refuses every client there (fail closed).`)) return;
  try {
    await followChange(await edge.del(path), status);
  } catch (error) {
    mount(status, problem(error, `Mutual authentication on ${where} was not removed.`));
  }
}

// A matcher in words: `{"sanUri": "spiffe://…"}` → "sanUri spiffe://…", a subject's attributes joined.
function matcher(m) {
  return Object.entries(m).map(([kind, value]) => (kind === "anyVerified" ? "any verified certificate"
    : typeof value === "object" ? `${kind} ${Object.entries(value).map(([k, v]) => `${k}=${v}`).join(", ")}`
      : `${kind} ${value}`)).join("; ");
}

function rulesView(authorization, where) {
  const title = h("h4", {}, "Authorization rules");
  if (!authorization) {
    return h("div", { class: "rules" }, title,
      h("p", { class: "muted" }, `None: every verified client may call every path on ${where}. Set them with the CLI (edgeproxy rules set) or the API.`));
  }
  const rows = authorization.rules.map((r, i) => h("tr", {},
    h("th", { scope: "row" }, `${i + 1}. ${r.pathPrefix}`, r.methods ? h("div", { class: "small" }, r.methods.join(", ")) : null),
    h("td", {}, r.requireCertificate ? "Yes" : "—"),
    h("td", {}, (r.allow || []).map((m) => h("div", {}, matcher(m)))),
    h("td", {}, (r.deny || []).map((m) => h("div", {}, matcher(m))))));
  return h("div", { class: "rules" }, title,
    h("p", {}, `Mode: ${authorization.mode === "report" ? "report (would-deny decisions are logged, requests still forwarded)" : "enforce"}`,
      ` · A request that matches no rule: ${authorization.default === "deny" ? "denied" : "allowed"}. The first rule whose path matches decides.`),
    table(`Authorization rules on ${where}`, ["Path prefix", "Certificate required", "Allow", "Deny"], rows, "No rule: the default decides."));
}

function changeView(change) {
  const counts = ["expectedNodes", "pendingNodes", "appliedNodes", "failedNodes", "lostNodes"]
    .map((k) => {
      const names = change[k] || [];
      return `${k.replace("Nodes", "")}: ${names.length}${names.length ? ` (${names.join(", ")})` : ""}`;
    }).join(" · ");
  return h("div", { class: "change" },
    h("p", { class: "change-status", role: "status" },
      `${change.changeType === "BIND" ? "Binding" : "Unbinding"} ${change.caSetName || ""}: ${change.status}`),
    h("p", { class: "small change-nodes" }, counts),
    change.failureReason ? h("p", { class: "error" }, change.failureReason) : null,
    (change.warnings || []).map((w) => h("p", { class: "warn" }, w.detail)));
}

// The change's convergence across the nodes, until COMPLETE or FAILED.
async function followChange(change, area) {
  let current = change;
  for (let i = 0; i < POLL_LIMIT && area.isConnected; i += 1) {
    mount(area, h("progress", {
      max: Math.max(1, current.expectedNodes.length), value: current.appliedNodes.length, "aria-label": "Convergence",
    }), changeView(current));
    if (current.status !== "IN_PROGRESS") {
      announce(`Mutual authentication change ${current.status}`);
      // Draw the page again: the section then shows the binding as it now is, and this change.
      window.dispatchEvent(new HashChangeEvent("hashchange"));
      return current;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
    current = await edge.get(current.changeLink.replace(/^\/edge\/v1/, ""));
  }
  return current;
}
