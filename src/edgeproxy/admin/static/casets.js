// The landing page: CA certificate sets (filter, badges, warnings), creating and deleting one.
import { ApiError, can, del, get, post } from "./api.js";
import { announce, badge, daysUntil, dialog, field, h, heading, mount, problem, table, time } from "./dom.js";

const NAME_RULE = /^[A-Za-z0-9_.%-]{3,64}$/;
const NAME_HINT = "3–64 characters: letters, digits, and _ . % - (not \"...\"). You can't change the name after you create the set.";

export function versionBadges(set) {
  return h("span", { class: "badges" },
    set.stagingVersion ? badge(`Staging v${set.stagingVersion}`, "staging") : badge("Staging: none", "off"),
    set.productionVersion ? badge(`Production v${set.productionVersion}`, "production") : badge("Production: none", "off"));
}

export async function caSetsPage(main) {
  const name = h("input", { type: "search", name: "name" });
  const network = h("select", { name: "network" },
    h("option", { value: "" }, "Any network"),
    h("option", { value: "STAGING" }, "Active on staging"),
    h("option", { value: "PRODUCTION" }, "Active on production"));
  const results = h("div", { "aria-live": "polite" });
  const filters = h("form", { class: "filters", role: "search" },
    field("Filter by name", name), field("Network where active", network));
  let latest = 0;
  const load = async () => {
    const mine = ++latest;
    const params = new URLSearchParams();
    if (name.value) params.set("caSetNamePrefix", name.value);
    if (network.value) params.set("activatedOn", network.value);
    try {
      const { caSets } = await get(`/ca-sets${params.size ? `?${params}` : ""}`);
      if (mine !== latest) return; // a newer filter's answer is on its way
      mount(results, setsTable(caSets, Boolean(name.value || network.value)));
      expiryWarnings(results, caSets);
    } catch (error) {
      mount(results, problem(error));
    }
  };
  filters.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  name.addEventListener("input", load);
  network.addEventListener("change", load);
  mount(main,
    heading("CA certificate sets",
      can("editor") ? h("a", { class: "button primary", href: "#/ca-sets/new" }, "New CA certificate set") : null),
    filters, results);
  await load();
}

function setsTable(sets, filtered) {
  const rows = sets.map((set) => h("tr", { "data-ca-set": set.caSetName },
    h("th", { scope: "row" }, h("a", { href: `#/ca-sets/${set.caSetId}` }, set.caSetName),
      set.description ? h("div", { class: "muted small" }, set.description) : null),
    h("td", {}, versionBadges(set)),
    h("td", {}, set.latestVersion ? `v${set.latestVersion}` : h("span", { class: "muted" }, "no version yet")),
    h("td", { class: "warnings", "data-warnings": set.caSetId },
      set.warnings.map((w) => h("div", { class: "warn" }, w.detail))),
    h("td", {}, set.createdBy, h("div", { class: "small" }, time(set.createdDate)))));
  return table("!CA certificate sets", ["Name", "Active versions", "Latest", "Warnings", "Created"], rows,
    filtered ? "No CA set matches this filter." : "No CA set yet. Create one with “New CA certificate set”.");
}

// Certificates of active versions that expire within 30 days, or have: one small call per version.
async function expiryWarnings(results, sets) {
  for (const set of sets) {
    const versions = [...new Set([set.stagingVersion, set.productionVersion].filter(Boolean))];
    const cell = results.querySelector(`[data-warnings="${set.caSetId}"]`);
    for (const version of versions) {
      try {
        const { certificates } = await get(
          `/ca-sets/${set.caSetId}/versions/${version}/certificates?certificateStatus=EXPIRING,EXPIRED&expiryThresholdInDays=30`);
        for (const c of certificates) {
          const days = daysUntil(c.endDate);
          cell?.append(h("div", { class: days < 0 ? "error" : "warn" },
            days < 0 ? `v${version}: ${c.subject} has expired` : `v${version}: ${c.subject} expires in ${days} days`));
        }
      } catch { /* the warning column is a courtesy; the set page shows errors */ }
    }
  }
}

export async function newCaSetPage(main) {
  const name = h("input", { type: "text", name: "caSetName", required: true, maxlength: 64, autocomplete: "off" });
  const description = h("textarea", { name: "description", maxlength: 255, rows: 2 });
  const nameError = h("p", { class: "error", id: "name-error", "aria-live": "polite" });
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, "Submit");
  const check = () => {
    const ok = NAME_RULE.test(name.value) && !name.value.includes("...");
    nameError.textContent = name.value && !ok ? "This name breaks the rules above." : "";
    name.setAttribute("aria-invalid", name.value && !ok ? "true" : "false");
    return ok;
  };
  name.addEventListener("input", check);
  const form = h("form", { class: "card" },
    field("Name", name, NAME_HINT), nameError,
    field("Description (optional)", description),
    h("p", { class: "notice" }, "Make sure you're happy with the name: once created, you can't change it."),
    status, h("div", { class: "actions" }, submit, h("a", { href: "#/", class: "button" }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!check()) { name.focus(); nameError.textContent = "Enter a name that follows the rules above."; return; }
    submit.disabled = true;
    try {
      const set = await post("/ca-sets", { caSetName: name.value, description: description.value || null });
      announce(`CA set ${set.caSetName} created`);
      location.hash = `#/ca-sets/${set.caSetId}`;
    } catch (error) {
      mount(status, problem(error, "The CA set was not created."));
      submit.disabled = false;
    }
  });
  mount(main, heading("New CA certificate set"), form);
}

// Delete: confirmation, the asynchronous deletion's status, and a 409's reasons in words.
export async function deleteCaSet(set, status) {
  const ok = await dialog(`Delete CA set ${set.caSetName}?`, (close) => [
    h("p", {}, "The set and all its versions are deleted; its history stays readable. A set that is active on a network or bound to an edge certificate cannot be deleted."),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", onclick: () => close(true) }, `Delete ${set.caSetName}`),
      h("button", { type: "button", onclick: () => close(false) }, "Cancel")),
  ]);
  if (!ok) return;
  try {
    let state = await del(`/ca-sets/${set.caSetId}`);
    for (let i = 0; i < 120 && state.status === "IN_PROGRESS"; i += 1) {
      mount(status, h("p", {}, "Deleting…"));
      await new Promise((r) => setTimeout(r, 500));
      state = await get(`/ca-sets/${set.caSetId}/status/delete`);
    }
    if (state.status === "FAILED") {
      mount(status, problem(new ApiError(409, { title: "Deletion failed", detail: state.failureReason })));
    } else {
      mount(status, h("p", { class: "ok", role: "status" }, `Deletion of ${set.caSetName}: ${state.status}`));
      announce(`CA set ${set.caSetName} deleted`);
    }
  } catch (error) {
    mount(status, problem(error, "The CA set was not deleted."));
  }
}
