// A set's CRLs: upload, list (expired ones flagged), delete.
import { can, del, get, post } from "./api.js";
import { announce, field, h, mount, problem, table, time } from "./dom.js";
import { hasPrivateKey } from "./pem.js";
import { setHeader } from "./caset.js";

export async function crlsPage(main, setId) {
  const set = await setHeader(main, setId, "/crls");
  const { crls } = await get(`/ca-sets/${setId}/crls`);
  const status = h("div", { "aria-live": "polite" });
  const writable = can("editor") && set.caSetStatus === "NOT_DELETED";
  const rows = crls.map((c) => h("tr", { "data-crl": c.crlId },
    h("th", { scope: "row" }, c.issuer, c.description ? h("div", { class: "small muted" }, c.description) : null),
    h("td", {}, time(c.thisUpdate)),
    h("td", {}, time(c.nextUpdate), c.expired ? h("div", { class: "error" }, "Expired: past its next update") : null),
    h("td", {}, String(c.revokedCount)),
    h("td", {}, c.effective ? "In effect" : "Superseded", c.warnings.map((w) => h("div", { class: "warn small" }, w.detail))),
    h("td", {}, writable ? h("button", {
      type: "button", class: "link", "aria-label": `Delete the CRL of ${c.issuer}`,
      onclick: async () => {
        if (!window.confirm(`Delete the CRL of ${c.issuer}?`)) return;
        try { await del(`/ca-sets/${setId}/crls/${c.crlId}`); announce("CRL deleted"); window.dispatchEvent(new HashChangeEvent("hashchange")); } catch (error) { mount(status, problem(error, "The CRL was not deleted.")); }
      },
    }, "Delete") : null)));
  main.append(status, table("!CRLs", ["Issuer", "This update", "Next update", "Revoked", "State", ""], rows,
    "No CRL uploaded for this set."));
  if (!writable) return;
  const pem = h("textarea", { rows: 5, spellcheck: "false", placeholder: "-----BEGIN X509 CRL-----" });
  const file = h("input", { type: "file", accept: ".pem,.crl" });
  const description = h("input", { type: "text", maxlength: 255 });
  const upload = h("div", { "aria-live": "polite" });
  file.addEventListener("change", async () => { if (file.files[0]) pem.value = await file.files[0].text(); });
  const form = h("form", { class: "card" },
    h("h2", {}, "Upload a CRL"),
    field("CRL file", file), field("CRL PEM", pem), field("Description (optional)", description),
    upload, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Upload CRL")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (hasPrivateKey(pem.value)) { pem.value = ""; mount(upload, h("p", { class: "error", role: "alert" }, "That is a private key: it was removed and not sent.")); return; }
    try {
      await post(`/ca-sets/${setId}/crls`, { crlPem: pem.value, description: description.value || null });
      announce("CRL uploaded");
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (error) {
      mount(upload, problem(error, "The CRL was not uploaded."));
    }
  });
  main.append(form);
}
