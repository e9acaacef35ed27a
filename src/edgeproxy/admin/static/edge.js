// Edge certificates: the list, one certificate's details (hostnames, validity, nodes serving it),
// creating one, rotating its chain and key, and its mutual authentication per network.
import { can, edge, get } from "./api.js";
import { announce, badge, checkbox, daysUntil, field, h, heading, mount, problem, table, time } from "./dom.js";
import { mutualAuthSection } from "./mtls.js";

export function edgePages() {
  return [
    [/^\/edge-certificates$/, () => edgeListPage],
    [/^\/edge-certificates\/new$/, () => newEdgePage],
    [/^\/edge-certificates\/([^/]+)$/, (m) => (el) => edgePage(el, decodeURIComponent(m[1]))],
  ];
}

const href = (name) => `#/edge-certificates/${encodeURIComponent(name)}`;

function expiry(cert) {
  if (!cert) return h("span", { class: "muted" }, "—");
  const days = daysUntil(cert.endDate);
  return [time(cert.endDate), days < 0 ? h("div", { class: "error" }, "Expired")
    : days <= 30 ? h("div", { class: "warn" }, `Expires in ${days} days`) : null];
}

function bindingSummary(e) {
  return ["STAGING", "PRODUCTION"].map((network) => {
    const bound = e.mutualAuthentication?.[network];
    return h("div", {}, `${network.toLowerCase()}: `, bound ? bound.caSetName : h("span", { class: "muted" }, "none"));
  });
}

async function edgeListPage(main) {
  let edgeCertificates;
  try {
    ({ edgeCertificates } = await edge.get("/edge-certificates"));
  } catch (error) {
    if (error.status !== 404) throw error;
    return fleetEdgeList(main);
  }
  const rows = edgeCertificates.map((e) => h("tr", { "data-edge": e.name },
    h("th", { scope: "row" }, h("a", { href: href(e.name) }, e.name), " ",
      badge(e.source === "store" ? "managed here" : "from a node's file", e.source === "store" ? "ok-badge" : "off")),
    h("td", {}, e.hostnames.join(", ")),
    h("td", {}, expiry(e.certificate)),
    h("td", {}, bindingSummary(e)),
    h("td", {}, e.nodes.length ? e.nodes.join(", ") : h("span", { class: "muted" }, "no live node"))));
  mount(main,
    heading("Edge certificates",
      can("editor") ? h("a", { class: "button primary", href: "#/edge-certificates/new" }, "New edge certificate") : null),
    table("!Edge certificates", ["Edge certificate", "Hostnames", "Expires", "Mutual authentication", "Served by"], rows,
      "No edge certificate yet."));
}

// Chain and key from a file or pasted; the key goes only to this API, which seals it and never returns it.
function pemInputs(rotation) {
  const word = rotation ? "New " : "";
  const cap = (text) => (rotation ? text : text[0].toUpperCase() + text.slice(1));
  const chain = h("textarea", { rows: 5, spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE-----" });
  const key = h("textarea", { rows: 4, spellcheck: "false", autocomplete: "off", placeholder: "-----BEGIN PRIVATE KEY-----" });
  const chainFile = h("input", { type: "file", accept: ".pem,.crt" });
  const keyFile = h("input", { type: "file", accept: ".pem,.key" });
  chainFile.addEventListener("change", async () => { if (chainFile.files[0]) chain.value = await chainFile.files[0].text(); });
  keyFile.addEventListener("change", async () => { if (keyFile.files[0]) key.value = await keyFile.files[0].text(); keyFile.value = ""; });
  return {
    chain, key,
    fields: [
      field(`${word}${cap("certificate chain file (leaf first)")}`, chainFile),
      field(`${word}${cap("certificate chain PEM")}`, chain),
      field(`${word}${cap("private key file")}`, keyFile),
      field(`${word}${cap("private key PEM")}`, key, "Sent once to the admin API, stored sealed, never shown again."),
    ],
  };
}

async function newEdgePage(main) {
  const name = h("input", { type: "text", required: true, autocomplete: "off" });
  const hostnames = h("input", { type: "text", required: true, autocomplete: "off" });
  const origin = h("input", { type: "text", required: true, placeholder: "http://127.0.0.1:8080" });
  const isDefault = checkbox("Default certificate (for clients that send no matching SNI)", false);
  // The API's `alpn`, preferred protocol first; the first option is its default.
  const alpn = h("select", {},
    h("option", { value: "h2,http/1.1" }, "HTTP/2, then HTTP/1.1"),
    h("option", { value: "http/1.1,h2" }, "HTTP/1.1, then HTTP/2"),
    h("option", { value: "http/1.1" }, "HTTP/1.1 only"),
    h("option", { value: "h2" }, "HTTP/2 only"));
  const pem = pemInputs(false);
  const status = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card" },
    field("Name", name), field("Hostnames", hostnames, "Comma-separated; one *. wildcard label allowed."),
    field("Origin", origin),
    field("Protocols (ALPN)", alpn, "What TLS clients may choose, in this order of preference."),
    isDefault.wrap, ...pem.fields, status,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create edge certificate"),
      h("a", { class: "button", href: "#/edge-certificates" }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await edge.post("/edge-certificates", {
        name: name.value, hostnames: hostnames.value.split(",").map((s) => s.trim()).filter(Boolean),
        origin: origin.value, default: isDefault.input.checked, alpn: alpn.value.split(","),
        certificateChainPem: pem.chain.value, privateKeyPem: pem.key.value,
      });
      pem.key.value = "";
      announce(`Edge certificate ${made.name} created`);
      location.hash = href(made.name);
    } catch (error) {
      mount(status, problem(error, "The edge certificate was not created."));
    }
  });
  mount(main, heading("New edge certificate"), form);
}

async function edgePage(main, name) {
  const e = await edge.get(`/edge-certificates/${encodeURIComponent(name)}`);
  const managed = e.source === "store";
  const c = e.certificate;
  mount(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/edge-certificates" }, "Edge certificates"), " / ", e.name),
    heading(e.name, badge(managed ? "managed here" : "from a node's file (read-only)", managed ? "ok-badge" : "off")),
    e.warnings.map((w) => h("p", { class: "warn" }, w.detail)),
    h("dl", { class: "facts" },
      h("dt", {}, "Hostnames"), h("dd", {}, e.hostnames.join(", ")),
      h("dt", {}, "Origin"), h("dd", {}, e.origin || "—"),
      managed ? [h("dt", {}, "Protocols (ALPN)"), h("dd", {}, e.alpn.join(", "))] : null,
      h("dt", {}, "Served by"), h("dd", {}, e.nodes.length ? e.nodes.join(", ") : "no live node"),
      c ? [
        h("dt", {}, "Subject"), h("dd", {}, c.subject),
        h("dt", {}, "Issuer"), h("dd", {}, c.issuer),
        h("dt", {}, "Validity"), h("dd", {}, time(c.startDate), " – ", expiry(c)),
        h("dt", {}, "Names in the certificate"), h("dd", {}, (c.dnsNames || []).join(", ") || "—"),
        h("dt", {}, "Key"), h("dd", {}, `${c.keyType}, chain of ${c.chainLength}`),
        h("dt", {}, "SHA-256 fingerprint"), h("dd", {}, h("code", { class: "fingerprint" }, c.fingerprint)),
      ] : null,
      managed ? [h("dt", {}, "Last rotation"), h("dd", {}, time(e.rotatedDate || e.createdDate), ` (generation ${e.generation})`)] : null));
  if (managed && can("editor")) main.append(rotateForm(e));
  main.append(h("h2", {}, "Mutual authentication"));
  for (const network of ["STAGING", "PRODUCTION"]) main.append(await mutualAuthSection(e, network));
}

function rotateForm(e) {
  const pem = pemInputs(true);
  const status = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card" }, h("h2", {}, "Rotate the certificate and key"), ...pem.fields, status,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Rotate")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await edge.put(`/edge-certificates/${encodeURIComponent(e.name)}/certificate`,
        { certificateChainPem: pem.chain.value, privateKeyPem: pem.key.value });
      pem.key.value = "";
      announce("Certificate rotated");
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (error) {
      mount(status, problem(error, "The certificate was not rotated."));
    }
  });
  return form;
}

// A node without the edge certificates' API: the edge certificates its fleet reports, read-only.
async function fleetEdgeList(main) {
  const { nodes } = await get("/nodes");
  const byName = new Map();
  for (const n of nodes) {
    for (const b of n.bindings) {
      const entry = byName.get(b.edgeCertificate) || { ...b, nodes: [] };
      entry.nodes.push(`${n.name} (${n.network.toLowerCase()})`);
      byName.set(b.edgeCertificate, entry);
    }
  }
  const rows = [...byName.values()].map((e) => h("tr", {},
    h("th", { scope: "row" }, e.edgeCertificate),
    h("td", {}, e.hostnames.join(", ")),
    h("td", {}, e.caSet),
    h("td", {}, e.sendCaListToClient ? "Send CA list to client" : "—"),
    h("td", {}, e.nodes.join(", "))));
  mount(main, heading("Edge certificates"),
    table("!Edge certificates", ["Edge certificate", "Hostnames", "Certificate set", "CA list", "Served by"], rows,
      "No edge node reports an edge certificate."));
}
