// Certificates that expire within 30, 60 or 90 days, across every set's active and latest versions.
import { get } from "./api.js";
import { daysUntil, field, h, heading, mount, problem, table, time } from "./dom.js";

export async function expiringPage(main) {
  const within = h("select", {}, [30, 60, 90].map((d) => h("option", { value: d }, `${d} days`)));
  const results = h("div", { "aria-live": "polite" });
  const load = async () => {
    mount(results, h("p", { class: "muted" }, "Loading…"));
    try {
      const { caSets } = await get("/ca-sets");
      const rows = [];
      for (const set of caSets) {
        const versions = new Map();
        if (set.stagingVersion) versions.set(set.stagingVersion, ["active on staging"]);
        if (set.productionVersion) versions.set(set.productionVersion, [...(versions.get(set.productionVersion) || []), "active on production"]);
        if (set.latestVersion && !versions.has(set.latestVersion)) versions.set(set.latestVersion, ["latest"]);
        for (const [version, roles] of versions) {
          const { certificates } = await get(`/ca-sets/${set.caSetId}/versions/${version}/certificates?certificateStatus=EXPIRING,EXPIRED&expiryThresholdInDays=${within.value}`);
          for (const c of certificates) {
            const days = daysUntil(c.endDate);
            rows.push([days, h("tr", {},
              h("th", { scope: "row" }, c.subject),
              h("td", {}, h("a", { href: `#/ca-sets/${set.caSetId}/versions/${version}` }, `${set.caSetName} v${version}`), ` (${roles.join(", ")})`),
              h("td", {}, time(c.endDate)),
              h("td", { class: days < 0 ? "error" : "warn" }, days < 0 ? "Expired" : `${days} days`))]);
          }
        }
      }
      rows.sort((a, b) => a[0] - b[0]);
      mount(results, table("!Expiring certificates", ["Certificate", "CA set version", "Expires", "Left"], rows.map((r) => r[1]),
        `No certificate of an active or latest version expires within ${within.value} days.`));
    } catch (error) {
      mount(results, problem(error));
    }
  };
  within.addEventListener("change", load);
  mount(main, heading("Expiring certificates"), h("div", { class: "filters" }, field("Expiring within", within)), results);
  await load();
}
