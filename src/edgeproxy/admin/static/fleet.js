// The fleet: every node, its network, when it was last seen, what it applied; laggards marked.
import { get } from "./api.js";
import { badge, h, heading, mount, table, time } from "./dom.js";

export async function fleetPage(main) {
  const { nodes } = await get("/nodes");
  const newest = {};
  for (const n of nodes) {
    if (n.live && n.appliedRevision !== null) newest[n.network] = Math.max(newest[n.network] || 0, n.appliedRevision);
  }
  const rows = nodes.map((n) => {
    const edge = n.roles.includes("edge");
    const lagging = edge && n.live && n.appliedRevision !== null && n.appliedRevision < newest[n.network];
    const trouble = !n.live || lagging || Object.keys(n.applyErrors || {}).length > 0;
    return h("tr", { class: trouble ? "lagging" : "", "data-node": n.name },
      h("th", { scope: "row" }, n.name, " ", n.lost ? badge("lost", "error-badge")
        : n.live ? badge("live", "ok-badge") : badge("not seen lately", "error-badge")),
      h("td", {}, n.network.toLowerCase()),
      h("td", {}, n.roles.join(", ")),
      h("td", {}, time(n.lastSeenDate)),
      h("td", {}, edge ? [`revision ${n.appliedRevision ?? "—"} `, time(n.appliedDate), lagging ? h("div", { class: "warn" }, "Lagging behind the network") : null] : "—"),
      h("td", {}, Object.entries(n.appliedVersions || {}).map(([set, v]) => h("div", {}, `${set}: ${v === null ? "none (fail closed)" : `v${v}`}`)),
        Object.entries(n.applyErrors || {}).map(([set, e]) => h("div", { class: "error" }, `${set}: ${e}`))));
  });
  mount(main, heading("Fleet"),
    table("!Nodes", ["Node", "Network", "Roles", "Last seen", "Applied", "Versions"], rows, "No node has reported yet."));
}
