// "Activate version N": the set's details, the warnings, and the activation's live progress.
// Deactivation asks for an explicit confirmation.
import { get, post } from "./api.js";
import { announce, checkbox, dialog, h, mount, problem } from "./dom.js";

const POLL_MS = 500;
const POLL_LIMIT = 3600; // at most 30 minutes of polling, the documents' longest activation

export async function activateDialog(set, version) {
  const number = version.version;
  const warnings = await activationWarnings(set, version);
  await dialog(`Activate version ${number}`, (close) => {
    const progress = h("div", { class: "progress-area" });
    const buttons = ["STAGING", "PRODUCTION"].map((network) => {
      const where = network.toLowerCase();
      const active = version[`${where}Status`] === "ACTIVE";
      return h("button", {
        type: "button", class: "primary", disabled: active,
        onclick: async () => {
          buttons.forEach((b) => { b.disabled = true; });
          await activate(set, number, network, progress);
        },
      }, active ? `Version ${number} is active on ${where}` : `Activate version ${number} on ${where}`);
    });
    return [
      h("dl", { class: "facts" },
        h("dt", {}, "CA set"), h("dd", {}, set.caSetName),
        h("dt", {}, "Version"), h("dd", {}, `${number}${version.description ? ` — ${version.description}` : ""}`),
        h("dt", {}, "Certificates"), h("dd", {}, String(version.certificates.length)),
        h("dt", {}, "Active now"), h("dd", {}, `staging: ${set.stagingVersion ? `v${set.stagingVersion}` : "none"}, production: ${set.productionVersion ? `v${set.productionVersion}` : "none"}`)),
      warnings.map((w) => h("p", { class: "warn" }, w)),
      h("p", { class: "hint" }, "Every edge node of the network applies the version; you can close this window, the activation goes on."),
      h("div", { class: "actions" }, buttons),
      progress,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => { close(true); window.dispatchEvent(new HashChangeEvent("hashchange")); } }, "Close")),
    ];
  });
}

// Send an activation (or a rollback) and follow it; when the API answers that clients seen on that
// network would be refused, name them and ask for an explicit acknowledgement before sending it
// again with it. `words`: what failed, and the button that goes ahead anyway.
export async function sendActivation(send, words, where, progress, acknowledgeImpact = false) {
  try {
    return await follow(await send(acknowledgeImpact), progress);
  } catch (error) {
    mount(progress, problem(error, words.failed));
    if (error.slug !== "activation-would-refuse-clients") return null;
    progress.append(refusedClients(error.wouldBeRefused || []));
    const ack = checkbox(`I accept that these clients will be refused on ${where}`, false);
    const again = h("button", {
      type: "button", class: "danger",
      onclick: () => {
        if (!ack.input.checked) { ack.input.focus(); return; }
        again.disabled = true;
        sendActivation(send, words, where, progress, true);
      },
    }, words.anyway);
    progress.append(ack.wrap, h("div", { class: "actions" }, again));
    return null;
  }
}

function activate(set, number, network, progress) {
  const where = network.toLowerCase();
  const send = (acknowledgeImpact) => post(`/ca-sets/${set.caSetId}/versions/${number}/activate`,
    acknowledgeImpact ? { network, acknowledgeImpact } : { network });
  return sendActivation(send, {
    failed: `Version ${number} was not activated on ${where}.`,
    anyway: `Activate version ${number} on ${where} anyway`,
  }, where, progress);
}

function refusedClients(clients) {
  if (!clients.length) return null;
  return h("ul", { class: "refused-clients", "aria-label": "Clients that would be refused" },
    clients.map((c) => h("li", {}, `${c.subject} (issuer ${c.issuer})`, c.reason ? `: ${c.reason}` : "",
      c.nodes?.length ? ` — seen on ${c.nodes.join(", ")}` : "")));
}

// What an operator should know first: never tested on staging, clients seen on a network that this
// version would refuse (the API's impact), and CA certificates in the active version it drops (the API's diff).
async function activationWarnings(set, version) {
  const out = [];
  const { activations } = await get(`/ca-sets/${set.caSetId}/activations`);
  const tested = activations.some((a) => a.version === version.version && a.network === "STAGING"
    && a.activationType === "ACTIVATE" && a.activationStatus === "COMPLETE");
  if (!tested) out.push(`Version ${version.version} has never been active on staging: consider activating it on staging first for testing.`);
  for (const network of ["STAGING", "PRODUCTION"]) {
    try {
      const impact = await get(`/ca-sets/${set.caSetId}/versions/${version.version}/impact?network=${network}`);
      if (impact.wouldBeRefused.length) {
        out.push(`On ${network.toLowerCase()}, ${impact.wouldBeRefused.length} client(s) seen there would be refused: ${impact.wouldBeRefused.map((c) => c.subject).join("; ")}.`);
      }
    } catch { /* the impact is advice; the activation itself asks the API again */ }
  }
  for (const network of ["staging", "production"]) {
    const current = set[`${network}Version`];
    if (!current || current === version.version) continue;
    const { removed } = await get(`/ca-sets/${set.caSetId}/versions/${version.version}/diff?from=${current}`);
    if (removed.length) {
      out.push(`On ${network}, clients issued by ${removed.map((c) => c.subject).join("; ")} would lose access (in version ${current}, not in version ${version.version}).`);
    }
  }
  return out;
}

export async function deactivateDialog(set, version, network) {
  const where = network.toLowerCase();
  const number = version.version;
  await dialog(`Deactivate version ${number} on ${where}`, (close) => {
    const progress = h("div", { class: "progress-area" });
    const confirm = checkbox(`I understand: edge certificates bound to ${set.caSetName} on ${where} will refuse every client`, false);
    const force = checkbox("Force (emergency stop, even while edge certificates bind this set)", false,
      "Without it, deactivation is refused while a live edge node of this network binds the set.");
    const go = h("button", {
      type: "button", class: "danger",
      onclick: async () => {
        if (!confirm.input.checked) {
          mount(progress, h("p", { class: "error", role: "alert" }, "Tick the confirmation first."));
          confirm.input.focus();
          return;
        }
        go.disabled = true;
        try {
          const activation = await post(`/ca-sets/${set.caSetId}/versions/${number}/deactivate`,
            { network, force: force.input.checked });
          await follow(activation, progress);
        } catch (error) {
          mount(progress, problem(error, `Version ${number} was not deactivated on ${where}.`));
          go.disabled = false;
        }
      },
    }, `Deactivate version ${number} on ${where}`);
    return [
      h("p", {}, `With no active version on ${where}, the set's edge certificates there fail closed.`),
      confirm.wrap, force.wrap,
      h("div", { class: "actions" }, go,
        h("button", { type: "button", onclick: () => { close(true); window.dispatchEvent(new HashChangeEvent("hashchange")); } }, "Close")),
      progress,
    ];
  });
}

// Live progress until COMPLETE or FAILED: percent, and the nodes' counts when the API gives them.
export async function follow(activation, area) {
  const bar = h("progress", { max: 100, value: activation.percentComplete || 0, "aria-label": "Activation progress" });
  const text = h("p", { class: "activation-status", role: "status" });
  const nodes = h("p", { class: "small activation-nodes" });
  const warnings = h("div");
  mount(area, bar, text, nodes, warnings,
    activation.validation.warnings.map((w) => h("p", { class: "warn" }, w.detail)));
  let current = activation;
  const link = `/ca-sets/${activation.caSetId}/versions/${activation.version}/activations/${activation.activationId}`;
  for (let i = 0; i < POLL_LIMIT && area.isConnected; i += 1) {
    bar.value = current.percentComplete || 0;
    const verb = current.activationType === "DEACTIVATE" ? "Deactivation" : "Activation";
    text.textContent = `${verb} on ${current.network.toLowerCase()}: ${current.activationStatus} (${current.percentComplete}%)`;
    const counts = ["pendingNodes", "appliedNodes", "failedNodes", "lostNodes"].filter((k) => k in current);
    nodes.textContent = counts.map((k) => `${k.replace("Nodes", "")}: ${nodeCount(current[k])}`).join(" · ");
    // Convergence warnings (no edge node to wait for, nodes lost), when the API gives them.
    mount(warnings, (current.warnings || []).map((w) => h("p", { class: "warn" }, w.detail)));
    if (current.activationStatus !== "IN_PROGRESS") {
      if (current.activationStatus === "FAILED") area.append(h("p", { class: "error", role: "alert" }, `FAILED: ${current.failureReason || "no reason given"}`));
      announce(`${verb} ${current.activationStatus}`);
      return current;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
    current = await get(link);
  }
  return current;
}

function nodeCount(value) {
  return Array.isArray(value) ? `${value.length}${value.length ? ` (${value.join(", ")})` : ""}` : String(value);
}
