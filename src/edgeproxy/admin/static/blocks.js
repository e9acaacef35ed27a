// A set's blocked certificates: the list (lapsed ones marked), blocking one client certificate now
// by fingerprint or by issuer and serial number, with a reason and an optional expiry, and unblocking.
import { can, del, get, post } from "./api.js";
import { announce, badge, field, h, mount, problem, table, time } from "./dom.js";
import { setHeader } from "./caset.js";

const redraw = () => window.dispatchEvent(new HashChangeEvent("hashchange"));

export async function blocksPage(main, setId) {
  const set = await setHeader(main, setId, "/blocked-certificates");
  const { blockedCertificates } = await get(`/ca-sets/${setId}/blocked-certificates`);
  const status = h("div", { "aria-live": "polite" });
  const writable = can("editor") && set.caSetStatus === "NOT_DELETED";
  const rows = blockedCertificates.map((b) => {
    const what = b.fingerprintSha256 ? `SHA-256 ${b.fingerprintSha256}` : `${b.issuer}, serial ${b.serialNumber}`;
    return h("tr", { "data-block": b.blockId },
      h("th", { scope: "row" }, h("code", { class: "fingerprint" }, what)),
      h("td", {}, b.reason),
      h("td", {}, b.expiresAt ? time(b.expiresAt) : "Until unblocked",
        b.expired ? h("div", {}, badge("Lapsed: refuses no one", "off")) : h("div", {}, badge("In force", "error-badge"))),
      h("td", {}, b.createdBy, h("div", { class: "small" }, time(b.createdDate))),
      h("td", {}, writable ? h("button", {
        type: "button", class: "link", "aria-label": `Unblock ${what}`,
        onclick: () => unblock(setId, b, what, status),
      }, "Unblock") : null));
  });
  main.append(
    h("p", { class: "hint" }, "A blocked certificate is refused in the handshake on every network, and its open connections close after their request in flight, as soon as each edge node applies the block."),
    status,
    table("!Blocked certificates", ["Certificate", "Reason", "Expires", "Blocked by", ""], rows,
      "No certificate of this set is blocked."));
  if (writable) main.append(blockForm(setId));
}

async function unblock(setId, block, what, status) {
  if (!window.confirm(`Unblock ${what}? Its holder can connect again.`)) return;
  try {
    await del(`/ca-sets/${setId}/blocked-certificates/${block.blockId}`);
    announce("Certificate unblocked");
    redraw();
  } catch (error) {
    mount(status, problem(error, "The certificate was not unblocked."));
  }
}

function blockForm(setId) {
  const byFingerprint = h("input", { type: "radio", name: "block-by", value: "fingerprint", checked: true });
  const bySerial = h("input", { type: "radio", name: "block-by", value: "serial" });
  const fingerprint = h("input", { type: "text", autocomplete: "off", spellcheck: "false", size: 70 });
  const issuer = h("input", { type: "text", autocomplete: "off", spellcheck: "false", size: 50 });
  const serial = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const reason = h("input", { type: "text", required: true, maxlength: 255, autocomplete: "off" });
  const expires = h("input", { type: "datetime-local" });
  const fingerprintFields = h("div", {}, field("SHA-256 fingerprint", fingerprint, "64 hex digits of the certificate's DER; colons allowed."));
  const serialFields = h("div", { hidden: true },
    field("Issuer", issuer, "The certificate's issuer DN as RFC 4514 writes it, e.g. CN=Partner CA,O=Partner"),
    field("Serial number", serial, "In hex; colons or a 0x prefix allowed."));
  const choose = () => {
    fingerprintFields.hidden = !byFingerprint.checked;
    serialFields.hidden = byFingerprint.checked;
  };
  byFingerprint.addEventListener("change", choose);
  bySerial.addEventListener("change", choose);
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "danger" }, "Block certificate");
  const form = h("form", { class: "card", "aria-labelledby": "block-h" },
    h("h2", { id: "block-h" }, "Block a certificate"),
    h("fieldset", { class: "choice" }, h("legend", {}, "Identify it by"),
      h("label", {}, byFingerprint, " its SHA-256 fingerprint"),
      h("label", {}, bySerial, " its issuer and serial number")),
    fingerprintFields, serialFields,
    field("Reason", reason, "Shown here and recorded in the set's activities."),
    field("Expires (optional, your local time)", expires, "Left empty, the block lasts until someone unblocks it."),
    status, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!reason.value.trim()) {
      mount(status, h("p", { class: "error", role: "alert" }, "Give a reason: it is shown and audited."));
      reason.focus();
      return;
    }
    const body = byFingerprint.checked
      ? { fingerprintSha256: fingerprint.value.trim() }
      : { issuer: issuer.value.trim(), serialNumber: serial.value.trim() };
    body.reason = reason.value.trim();
    if (expires.value) body.expiresAt = new Date(expires.value).toISOString();
    submit.disabled = true;
    try {
      await post(`/ca-sets/${setId}/blocked-certificates`, body);
      announce("Certificate blocked");
      redraw();
    } catch (error) {
      mount(status, problem(error, "The certificate was not blocked."));
      submit.disabled = false;
    }
  });
  return form;
}
