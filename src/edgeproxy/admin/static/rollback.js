// Rollback on one network: activate again the version that was active there before the current one
// (the API picks it), through the normal activation path and its impact check.
import { post } from "./api.js";
import { dialog, h } from "./dom.js";
import { sendActivation } from "./activate.js";

export async function rollbackDialog(set, network) {
  const where = network.toLowerCase();
  const current = set[`${where}Version`];
  await dialog(`Roll back on ${where}`, (close) => {
    const target = h("p", { class: "rollback-target" });
    const progress = h("div", { class: "progress-area" });
    const send = async (acknowledgeImpact) => {
      const activation = await post(`/ca-sets/${set.caSetId}/rollback`,
        acknowledgeImpact ? { network, acknowledgeImpact } : { network });
      target.textContent = `Rolling ${where} back from version ${current} to version ${activation.version}.`;
      return activation;
    };
    const go = h("button", {
      type: "button", class: "danger",
      onclick: async () => {
        go.disabled = true;
        await sendActivation(send, {
          failed: `${set.caSetName} was not rolled back on ${where}.`,
          anyway: `Roll back on ${where} anyway`,
        }, where, progress);
      },
    }, `Roll back on ${where}`);
    return [
      h("p", {}, `This activates again the version that was active on ${where} before version ${current}, as a normal activation: the same checks, and the clients it would refuse named before anything changes.`),
      h("div", { class: "actions" }, go,
        h("button", { type: "button", onclick: () => { close(true); window.dispatchEvent(new HashChangeEvent("hashchange")); } }, "Close")),
      target, progress,
    ];
  });
}
