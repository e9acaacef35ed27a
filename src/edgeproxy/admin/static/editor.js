// The version editor: add certificates (drop or browse files, or paste PEMs), "Validate and add
// to version" with each certificate's problems next to it, then "Create version".
import { can, get, post, put } from "./api.js";
import { announce, checkbox, field, h, heading, mount, problem, time } from "./dom.js";
import { fingerprint, hasPrivateKey, splitBlocks, withoutKeys } from "./pem.js";
import { setHeader } from "./caset.js";

const KEY_REFUSED = "A private key was found and removed: it was not sent. A CA set holds CA certificates only; keep private keys off this page.";

export async function editorPage(main, setId, number) {
  const existing = number ? await get(`/ca-sets/${setId}/versions/${number}`) : null;
  const set = await setHeader(main, setId, "");
  if (!can("editor")) {
    main.append(h("p", { class: "notice" }, "Your role can read versions but not change them."));
    return;
  }
  if (existing && !existing.editable) {
    location.hash = `#/ca-sets/${setId}/versions/${number}`;
    return;
  }
  const state = {
    rows: (existing ? existing.certificates : []).map((c) => ({
      pem: c.certificatePem, description: c.description, added: true, cert: c, errors: [], source: "saved",
    })),
  };
  const title = existing ? `Edit version ${number}` : set.latestVersion ? "New version" : "Create version 1";
  const description = h("input", { type: "text", maxlength: 255, value: existing?.description || "" });
  const sha1 = checkbox("Allow SHA-1 (insecure)", existing?.allowInsecureSha1 || false,
    "Off by default. Use SHA-256 or stronger; allow SHA-1 only for CA certificates that need it.");
  const root = checkbox("Require root certificate", existing?.requireRootCertificate || false,
    "Every certificate must chain to a self-signed root in this version; clients are then verified up to that root.");
  const files = h("input", { type: "file", multiple: true, accept: ".pem,.crt,.cer,.txt,application/x-pem-file" });
  const paste = h("textarea", { rows: 6, spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE-----" });
  const inputStatus = h("div", { "aria-live": "assertive" });
  const listStatus = h("div", { "aria-live": "polite" });
  const list = h("div", { class: "cert-list" });
  const saveStatus = h("div", { "aria-live": "polite" });
  const validateButton = h("button", { type: "button", class: "primary" }, "Validate and add to version");
  const createButton = h("button", { type: "button", class: "primary" }, existing ? "Save version" : "Create version");

  const refuseKeys = (text, where) => {
    mount(inputStatus, h("p", { class: "error", role: "alert" }, `${where}: ${KEY_REFUSED}`));
    return withoutKeys(text);
  };
  const stage = (text, source) => {
    let blocks = splitBlocks(text);
    if (blocks.some((b) => b.isKey)) {
      refuseKeys(text, source);
      blocks = blocks.filter((b) => !b.isKey);
    }
    if (!blocks.length) {
      inputStatus.append(h("p", { class: "error" }, `${source}: no PEM certificate found.`));
      return 0;
    }
    blocks.forEach((b, i) => state.rows.push({
      pem: b.text, description: null, added: false, errors: [], source: blocks.length > 1 ? `${source}, certificate ${i + 1}` : source,
    }));
    return blocks.length;
  };
  const readFiles = async (fileList) => {
    mount(inputStatus);
    let count = 0;
    for (const file of fileList) {
      if (file.size > 1024 * 1024) {
        inputStatus.append(h("p", { class: "error" }, `${file.name}: larger than 1 MiB; not read.`));
        continue;
      }
      count += stage(await file.text(), file.name);
    }
    files.value = "";
    draw();
    if (count) announce(`${count} certificate(s) ready to validate`);
  };
  files.addEventListener("change", () => readFiles(files.files));
  paste.addEventListener("input", () => {
    if (hasPrivateKey(paste.value)) paste.value = refuseKeys(paste.value, "Pasted text");
  });
  const drop = h("div", { class: "drop" },
    h("label", { for: "pem-files" }, "Drop or browse files to upload"),
    Object.assign(files, { id: "pem-files" }),
    h("p", { class: "hint" }, "A PEM file may hold one or more certificates: each becomes its own row."));
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    readFiles(event.dataTransfer.files);
  });

  const body = () => ({
    description: description.value || null,
    allowInsecureSha1: sha1.input.checked,
    requireRootCertificate: root.input.checked,
    certificates: state.rows.map((r) => ({ certificatePem: r.pem, description: r.description })),
  });
  const showErrors = async (result, error) => {
    const byEntry = error ? error.at("/certificates") : new Map();
    (result?.errors || []).forEach((e) => {
      const m = (e.pointer || "").match(/^\/certificates\/(\d+)/);
      if (m) byEntry.set(Number(m[1]), [...(byEntry.get(Number(m[1])) || []), e]);
    });
    const known = new Map((result?.certificates || []).map((c) => [c.fingerprint, c]));
    for (const [i, row] of state.rows.entries()) {
      row.errors = byEntry.get(i) || [];
      const print = await fingerprint(row.pem);
      if (print && known.has(print)) row.cert = known.get(print);
    }
    const general = [...(result?.errors || []), ...(error?.errors || [])].filter((e) => e.pointer === "/certificates" || e.pointer === "");
    return general;
  };

  validateButton.addEventListener("click", async () => {
    mount(inputStatus);
    mount(listStatus);
    if (paste.value.trim()) {
      if (hasPrivateKey(paste.value)) { paste.value = refuseKeys(paste.value, "Pasted text"); return; }
      if (stage(paste.value, "Pasted text")) paste.value = "";
    }
    if (!state.rows.some((r) => !r.added)) {
      mount(listStatus, h("p", { class: "error" }, "Add certificates first: drop or browse files, or paste PEMs."));
      draw();
      return;
    }
    validateButton.disabled = true;
    try {
      // Invalid certificates answer 400 certificate-validation-failure with the whole report.
      const result = await post("/certificates/validate", body()).catch((error) => {
        if (error.slug === "certificate-validation-failure") return error;
        throw error;
      });
      const general = await showErrors(result, null);
      if (result.valid) {
        const count = state.rows.filter((r) => !r.added).length;
        state.rows.forEach((r) => { r.added = true; });
        mount(listStatus, h("p", { class: "ok", role: "status" }, `${count} certificate(s) validated and added to this version.`),
          result.warnings.map((w) => h("p", { class: "warn" }, w.detail)));
        announce(`${count} certificates added`);
      } else {
        mount(listStatus, h("p", { class: "error", role: "alert" },
          "Validation failed: the certificates were not added. Fix or remove the rows marked below, then validate again."),
          general.map((e) => h("p", { class: "error" }, e.detail)));
      }
    } catch (error) {
      mount(listStatus, problem(error, "The certificates could not be validated."));
    }
    validateButton.disabled = false;
    draw();
  });

  createButton.addEventListener("click", async () => {
    mount(saveStatus);
    if (state.rows.some((r) => !r.added)) {
      mount(saveStatus, h("p", { class: "error", role: "alert" }, "Some certificates are not validated yet: click “Validate and add to version” first, or remove them."));
      return;
    }
    if (!state.rows.length) {
      mount(saveStatus, h("p", { class: "error", role: "alert" }, "A version needs at least one certificate."));
      return;
    }
    createButton.disabled = true;
    try {
      const saved = existing
        ? await put(`/ca-sets/${setId}/versions/${number}`, body())
        : await post(`/ca-sets/${setId}/versions`, body());
      announce(`Version ${saved.version} saved`);
      location.hash = `#/ca-sets/${setId}/versions/${saved.version}`;
    } catch (error) {
      await showErrors(null, error);
      draw();
      mount(saveStatus, problem(error, "The version was not saved."));
      createButton.disabled = false;
    }
  });

  function draw() {
    const rows = state.rows.map((row, i) => {
      const label = row.cert ? row.cert.subject : row.source;
      const errorId = `cert-${i}-errors`;
      return h("li", { class: `cert-row ${row.errors.length ? "has-errors" : ""} ${row.added ? "added" : "staged"}`, "data-row": i },
        h("div", { class: "cert-main" },
          h("strong", {}, label),
          row.cert ? h("div", { class: "small" }, `Issuer: ${row.cert.issuer} · expires `, time(row.cert.endDate)) : null,
          h("div", { class: "small muted" }, row.added ? "In this version" : "Not validated yet", row.cert ? ` · from ${row.source}` : ""),
          row.errors.length ? h("ul", { class: "cert-errors", id: errorId, role: "alert" }, row.errors.map((e) => h("li", {}, e.detail))) : null),
        h("button", {
          type: "button", class: "link", "aria-label": `Remove ${label}`,
          onclick: () => { state.rows.splice(i, 1); draw(); },
        }, "Remove"));
    });
    mount(list, rows.length
      ? h("ol", { class: "certs", "aria-label": "Certificates" }, rows)
      : h("p", { class: "empty" }, "No certificate yet."));
  }
  draw();
  main.append(
    h("h2", {}, title),
    h("div", { class: "card" },
      field("Version description (optional)", description),
      sha1.wrap, root.wrap),
    h("section", { class: "card", "aria-labelledby": "add-h" },
      h("h3", { id: "add-h" }, "Add certificates"),
      drop,
      field("Paste certificate PEM(s) here", paste),
      inputStatus,
      h("div", { class: "actions" }, validateButton)),
    h("section", { class: "card", "aria-labelledby": "list-h" },
      h("h3", { id: "list-h" }, "Certificates"), listStatus, list),
    saveStatus,
    h("div", { class: "actions" }, createButton,
      h("a", { class: "button", href: `#/ca-sets/${setId}` }, "Cancel")),
    h("p", { class: "hint" }, "If you leave this page before you create the version, your changes are lost."));
}
